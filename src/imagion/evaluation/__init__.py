"""Evaluation: same-account pairs, pairwise accuracy with intervals and baselines, cross-validation."""
