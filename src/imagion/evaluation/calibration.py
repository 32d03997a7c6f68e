"""How trustworthy a win probability is: log loss, Brier score, expected calibration error and
the reliability table (10 equal-width bins of confidence), on pairs the model did not train on.
A coin (p = 0.5 for every pair) scores log loss 0.693, Brier 0.25 and ECE 0 with 50% accuracy."""

from __future__ import annotations

from typing import NotRequired, TypedDict

import numpy as np

from imagion.models.transforms import sigmoid

BINS = 10


class ReliabilityBin(TypedDict):
    lo: float
    hi: float
    pairs: int
    confidence: float  # mean probability given to the predicted winner
    accuracy: float  # how often the predicted winner won


def pair_probabilities(
    pred: np.ndarray, scale: np.ndarray | float, i: np.ndarray, j: np.ndarray
) -> np.ndarray:
    """P(i beats j) for each pair; `scale` per row (cross-validation: each fold's own) or one."""
    pred = np.asarray(pred, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    s = s[i] if s.ndim else s
    return sigmoid(s * (pred[i] - pred[j]))


class CalibrationFigures(TypedDict):
    """How well the pair probabilities held: log loss, Brier, ECE, reliability bins."""

    log_loss: float
    brier: float
    ece: float
    pairs: int
    bins: NotRequired[list[ReliabilityBin]]


def calibration_metrics(p: np.ndarray, y: np.ndarray, with_bins: bool = True) -> CalibrationFigures:
    """`p` = P(first of the pair wins), `y` = 1 where it did."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(y, dtype=np.float64)
    log_loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    brier = float(((p - y) ** 2).mean())
    confidence = np.maximum(p, 1 - p)
    right = np.where(p > 0.5, y, np.where(p < 0.5, 1 - y, 0.5))  # p = 0.5 names no winner
    edges = np.linspace(0.5, 1.0, BINS + 1)  # confidence lies in [0.5, 1]
    idx = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, BINS - 1)
    bins: list[ReliabilityBin] = []
    ece = 0.0
    for b in range(BINS):
        mask = idx == b
        if not mask.any():
            continue
        conf, acc = float(confidence[mask].mean()), float(right[mask].mean())
        ece += mask.mean() * abs(conf - acc)
        bins.append(
            ReliabilityBin(
                lo=float(edges[b]),
                hi=float(edges[b + 1]),
                pairs=int(mask.sum()),
                confidence=conf,
                accuracy=acc,
            )
        )
    out = CalibrationFigures(log_loss=log_loss, brier=brier, ece=float(ece), pairs=len(p))
    if with_bins:
        out["bins"] = bins
    return out
