"""The score a photo is shown with: the model's calibrated expectation of its 0–10 image score
(the score its likes would get in its account) and an 80% interval, both fitted on held-out
predictions — posts the model (or a model of the same recipe) did not train on.

The input is the photo's position among the model's own training outputs (0–1: the percentile
of its raw output), which is comparable between the models of a cross-validation and the final
model. The expectation is the mean actual score of held-out posts at that position (binned,
shrunk towards the overall mean when a bin is small, and made non-decreasing), the interval the
10th and 90th percentiles of their actual scores there. A weak model's expectation stays near
the middle with a wide interval; a strong one earns a wider spread. Torch-free."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

LOW_Q, HIGH_Q = 0.1, 0.9  # the interval: 80% of actual scores should fall inside it
POSTS_PER_BIN = 100  # held-out posts per position bin (at most MAX_BINS bins)
MAX_BINS = 10
MEAN_PRIOR = 20.0  # pseudo-posts at the overall mean each bin's mean is shrunk by
SPREAD_PRIOR = 100.0  # pseudo-posts at the overall spread each bin's percentiles are shrunk by
TIE_BREAK = 1e-3  # score points per unit of position added to the expectation: no flat stretch
# Shown scores: the expectation rises by at least MIN_SLOPE score points per unit of position
# everywhere (a pooled, flat stretch of the fit included: at most 0.3 points in all), and beyond
# the outermost bins it goes on with the slope of the segment before them, bent so that it stays
# inside 0–10: distinct raw outputs show distinct scores in the same order (docs/quality.md).
MIN_SLOPE = 0.3
NO_INTERVAL = (
    "No range: this checkpoint has no held-out predictions to fit one on (it was trained by an "
    "earlier imagion, or nothing was held out), so its score is the photo's percentile among "
    "the training posts, not a prediction of its likes"
)


ORDER_SLACK = 1e-6  # rounding a card may carry (json, float32) without being out of order


def is_number(x: object) -> bool:
    """A JSON number: an int or a float, not a bool (True is an int to isinstance)."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def check_shape(knots: list[float], mean: list[float], low: list[float], high: list[float]) -> None:
    """What every expected score must be, checked when a card is read (a hand-edited card with
    low and high swapped, a reversed mean or a mean ×10 is refused): ValueError names the field."""
    if len({len(knots), len(mean), len(low), len(high)}) != 1:
        raise ValueError("expected_score lists differ in length")
    k, m, lo, hi = (np.asarray(v, dtype=np.float64) for v in (knots, mean, low, high))
    if np.any(np.diff(k) < 0) or k[0] < 0 or k[-1] > 1:
        raise ValueError("expected_score knots are not increasing positions from 0 to 1")
    for key, v in (("mean", m), ("low", lo), ("high", hi)):
        if v.min() < -ORDER_SLACK or v.max() > 10 + ORDER_SLACK:
            raise ValueError(f"expected_score {key} is outside 0–10")
    if np.any(np.diff(m) < -ORDER_SLACK):
        raise ValueError(
            "expected_score mean is not non-decreasing (a higher output, a lower score)"
        )
    if np.any(lo > m + ORDER_SLACK) or np.any(m > hi + ORDER_SLACK):
        raise ValueError("expected_score is not low ≤ mean ≤ high at every knot")


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to `values` (weighted least squares; pool adjacent
    violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, _, c in blocks])


def _band(resid: np.ndarray) -> tuple[float, float]:
    """The 10th and 90th percentiles of `resid`, widened for a small sample as split conformal
    prediction does (level ⌈(n+1)·0.9⌉/n): 12 posts' percentiles would claim too narrow a range."""
    n = len(resid)
    hi = min(1.0, np.ceil((n + 1) * HIGH_Q) / n)
    lo = max(0.0, 1.0 - np.ceil((n + 1) * (1 - LOW_Q)) / n)
    a, b = np.quantile(resid, [lo, hi])
    return float(a), float(b)


@dataclass
class ScoreModel:
    """Percentile position (0–1) → expected score and its 80% interval, on knots between which
    it is interpolated (and held constant beyond)."""

    knots: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    posts: int
    source: str
    fit_coverage: float | None = None  # share of the held-out posts inside their interval

    @classmethod
    def fit(cls, position: np.ndarray, actual: np.ndarray, source: str) -> ScoreModel:
        """Fitted on held-out posts: each one's position among its model's training outputs
        (0–1) and its actual 0–10 score."""
        u = np.asarray(position, dtype=np.float64)
        y = np.asarray(actual, dtype=np.float64)
        keep = np.isfinite(u) & np.isfinite(y)
        u, y = u[keep], y[keep]
        if len(u) < 2:
            raise ValueError("fewer than 2 held-out posts to fit an expected score on")
        order = np.argsort(u, kind="stable")
        u, y = u[order], y[order]
        k = int(np.clip(len(u) // POSTS_PER_BIN, 2 if len(u) >= 4 else 1, MAX_BINS))
        bins = np.array_split(np.arange(len(u)), k)
        n = np.array([len(b) for b in bins], dtype=np.float64)
        overall = float(y.mean())
        raw_mean = np.array([y[b].mean() for b in bins])
        mean = _isotonic((n * raw_mean + MEAN_PRIOR * overall) / (n + MEAN_PRIOR), n)
        fitted = np.repeat(mean, n.astype(int))
        resid = y - fitted
        lo_all, hi_all = _band(resid)
        lo, hi = np.array([_band(resid[b]) for b in bins]).T
        lo = (n * lo + SPREAD_PRIOR * lo_all) / (n + SPREAD_PRIOR)
        hi = (n * hi + SPREAD_PRIOR * hi_all) / (n + SPREAD_PRIOR)
        # the ends held out to 0 and 1, and a hair of slope everywhere: a higher raw output never
        # shows a lower score, nor (where the evidence is flat) the same one
        knots = np.r_[0.0, [u[b].mean() for b in bins], 1.0]
        mean, lo, hi = (np.r_[v[0], v, v[-1]] for v in (mean, lo, hi))
        mean = mean + TIE_BREAK * knots
        model = cls(
            knots=[float(v) for v in knots],
            mean=[float(v) for v in mean],
            low=[float(v) for v in np.clip(mean + np.minimum(lo, 0), 0, 10)],
            high=[float(v) for v in np.clip(mean + np.maximum(hi, 0), 0, 10)],
            posts=len(u),
            source=source,
        )
        _m, a, b = model.predict(u)
        model.fit_coverage = float(((y >= a) & (y <= b)).mean())
        return model

    def predict(self, position: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(expected score, 10th percentile, 90th percentile) at each position (0–1, or beyond
        for a raw output outside the training outputs): strictly increasing everywhere (see
        `strict_curve`), the interval moved along with it and kept inside 0–10."""
        u = np.asarray(position, dtype=np.float64)
        knots, mean = self.strict_curve()
        k = self.knots
        m = _extended(u, knots, mean)
        shift = m - np.interp(u, k, self.mean)
        low = np.clip(np.interp(u, k, self.low) + shift, 0.0, m)
        high = np.clip(np.interp(u, k, self.high) + shift, m, 10.0)
        return m, low, high

    def strict_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The knots and expectations `predict` interpolates: the fitted means raised where they
        rise by less than MIN_SLOPE per unit of position, and the held ends (the first and last
        knots repeat their bin's mean) given the slope of the segment next to them."""
        k = np.asarray(self.knots, dtype=np.float64)
        m = np.asarray(self.mean, dtype=np.float64).copy()
        if len(k) >= 4 and m[1] - m[0] < MIN_SLOPE * (k[1] - k[0]):
            m[0] = m[1] - max(_slope(k, m, 1, 2), MIN_SLOPE) * (k[1] - k[0])
        if len(k) >= 4 and m[-1] - m[-2] < MIN_SLOPE * (k[-1] - k[-2]):
            m[-1] = m[-2] + max(_slope(k, m, -3, -2), MIN_SLOPE) * (k[-1] - k[-2])
        for i in range(1, len(m)):
            m[i] = max(m[i], m[i - 1] + MIN_SLOPE * (k[i] - k[i - 1]))
        return k, np.clip(m, 1e-3, 10.0 - 1e-3)

    @property
    def spread(self) -> tuple[float, float]:
        """The lowest and highest expected score this model can give."""
        return self.mean[0], self.mean[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "mean and 10th/90th percentiles of held-out actual scores by position",
            "knots": self.knots,
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "posts": self.posts,
            "source": self.source,
            "fit_coverage": self.fit_coverage,
        }

    @classmethod
    def from_dict(cls, d: object) -> ScoreModel:
        """From a checkpoint's dict, checked: ValueError names what is wrong."""
        if not isinstance(d, dict):
            raise ValueError("expected_score is not a mapping")
        arrays = {}
        for key in ("knots", "mean", "low", "high"):
            v = d.get(key)
            if not isinstance(v, list) or not v or not all(is_number(x) for x in v):
                raise ValueError(f"expected_score {key} is not a list of numbers")
            if not all(math.isfinite(x) for x in v):
                raise ValueError(f"expected_score {key} is not finite")
            arrays[key] = [float(x) for x in v]
        check_shape(arrays["knots"], arrays["mean"], arrays["low"], arrays["high"])
        cov = d.get("fit_coverage")
        return cls(
            **arrays,
            posts=int(d.get("posts") or 0),
            source=str(d.get("source") or "held-out posts"),
            fit_coverage=float(cov) if isinstance(cov, int | float) else None,
        )


def _slope(k: np.ndarray, m: np.ndarray, i: int, j: int) -> float:
    dk = k[j] - k[i]
    return float((m[j] - m[i]) / dk) if dk > 0 else 0.0


def _extended(u: np.ndarray, k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """`m` interpolated on `k`, and beyond the ends continued with the end segments' slopes
    (at least MIN_SLOPE), bent towards 0 and 10 so that it stays strictly inside them."""
    shape = np.shape(u)
    out = np.array(np.interp(u, k, m), dtype=np.float64, ndmin=1)
    u = np.array(u, dtype=np.float64, ndmin=1)
    if len(k) < 2:
        return out.reshape(shape)
    top, bottom = u > k[-1], u < k[0]
    if top.any():
        s, room = max(_slope(k, m, -2, -1), MIN_SLOPE), 10.0 - m[-1]
        out[top] = 10.0 - room * np.exp(-s * (u[top] - k[-1]) / room)
    if bottom.any():
        s, room = max(_slope(k, m, 0, 1), MIN_SLOPE), m[0]
        out[bottom] = room * np.exp(-s * (k[0] - u[bottom]) / room)
    return out.reshape(shape)


class IntervalBin(TypedDict):
    """Posts in one bin of the predicted score: mean predicted vs actual, share inside."""

    posts: int
    predicted: float
    actual: float
    coverage: float


class ScoreFigures(TypedDict):
    """How well shown scores held: the share inside their 80% interval, and by bin."""

    posts: int
    coverage: float
    nominal: float
    mean_width: float
    max_bin_gap: float
    bins: list[IntervalBin]
    left_out: NotRequired[int]  # posts left out: the range was fitted on them


def interval_figures(
    predicted: np.ndarray, low: np.ndarray, high: np.ndarray, actual: np.ndarray, bins: int = 5
) -> ScoreFigures | None:
    """How well shown scores held on posts with a known actual score: the share inside their
    80% interval (it should be near 80%) and, in bins of the predicted score (equal counts),
    the mean predicted vs the mean actual score. None without any predicted interval."""
    p, a, lo, hi = (np.asarray(v, dtype=np.float64) for v in (predicted, actual, low, high))
    keep = np.isfinite(p) & np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    if not keep.any():
        return None
    p, a, lo, hi = p[keep], a[keep], lo[keep], hi[keep]
    order = np.argsort(p, kind="stable")
    rows: list[IntervalBin] = []
    for b in np.array_split(order, min(bins, len(p))):
        rows.append(
            IntervalBin(
                posts=len(b),
                predicted=float(p[b].mean()),
                actual=float(a[b].mean()),
                coverage=float(((a[b] >= lo[b]) & (a[b] <= hi[b])).mean()),
            )
        )
    return ScoreFigures(
        posts=len(p),
        coverage=float(((a >= lo) & (a <= hi)).mean()),
        nominal=HIGH_Q - LOW_Q,
        mean_width=float((hi - lo).mean()),
        max_bin_gap=max(abs(r["predicted"] - r["actual"]) for r in rows),
        bins=rows,
    )
