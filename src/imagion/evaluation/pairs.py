"""Same-account pairs: the original design's evaluation protocol (torch-free)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def same_account_pairs(groups: np.ndarray, likes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """All pairs (i, j), i < j, of the same account; returns (i, j, ties) without equal-likes pairs."""
    codes = pd.factorize(np.asarray(groups))[0]
    likes = np.asarray(likes, dtype=np.float64)
    order = np.argsort(
        codes, kind="stable"
    )  # each account's rows together, in their original order
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    ii, jj = [], []
    ties = 0
    for idx in np.split(order, bounds):
        a, b = np.triu_indices(len(idx), k=1)
        i, j = idx[a], idx[b]
        eq = likes[i] == likes[j]
        ties += int(eq.sum())
        ii.append(i[~eq])
        jj.append(j[~eq])
    if not ii:
        return np.array([], dtype=int), np.array([], dtype=int), 0
    return np.concatenate(ii), np.concatenate(jj), ties


def pair_outcomes(pred: np.ndarray, likes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """1 where the model orders the pair as the likes do, 0 where reversed, 0.5 on a predicted tie."""
    dp = np.sign(np.asarray(pred, dtype=np.float64)[i] - np.asarray(pred, dtype=np.float64)[j])
    dl = np.sign(np.asarray(likes, dtype=np.float64)[i] - np.asarray(likes, dtype=np.float64)[j])
    return np.where(dp == 0, 0.5, (dp == dl).astype(np.float64))


def pairwise_accuracy(pred: np.ndarray, likes: np.ndarray, groups: np.ndarray) -> float:
    i, j, _ = same_account_pairs(groups, likes)
    if not len(i):
        return float("nan")
    return float(pair_outcomes(pred, likes, i, j).mean())
