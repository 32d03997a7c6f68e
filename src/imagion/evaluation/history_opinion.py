"""The history's second opinion, measured: each post's neighbours among the EARLIER posts of its
account (cosine of pooled features), their similarity-weighted mean score, and its pairwise
accuracy beside the model's on the same pairs (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

K_OPINION = 3  # neighbours behind an opinion (rank --history shows as many by default)
SURE_Z = 1.96  # the blend is better only when its net wins exceed this many standard errors


def past_opinions(
    features: np.ndarray,
    scores: np.ndarray,
    times: np.ndarray,
    accounts: np.ndarray,
    k: int = K_OPINION,
) -> np.ndarray:
    """Row i's opinion: the similarity-weighted mean score (weights clipped at 0) of its k most
    similar posts of the same account published strictly before it; NaN without a date or
    without an earlier post. `features` L2-normalised, one row per post."""
    out = np.full(len(scores), np.nan)
    times = np.asarray(times, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    for idx in pd.Series(np.arange(len(scores))).groupby(np.asarray(accounts)).indices.values():
        idx = np.asarray(idx)
        sim = features[idx] @ features[idx].T
        earlier = times[idx][None, :] < times[idx][:, None]  # NaN compares False: never used
        sim = np.where(earlier, sim, -np.inf)
        for r, row in enumerate(sim):
            n = int(np.isfinite(row).sum())
            if not n:
                continue
            top = np.argsort(-row, kind="stable")[: min(k, n)]
            w = np.clip(row[top], 0.0, None)
            s = scores[idx[top]]
            out[idx[r]] = float(s @ w / w.sum()) if w.sum() > 0 else float(s.mean())
    return out


@dataclass
class HistoryOpinion:
    """Pairwise accuracy of the history's opinion and of the model on the same pairs (the
    evaluated pairs whose two posts both have an earlier post to be judged from)."""

    pairs: int  # pairs judged by both
    of_pairs: int  # the evaluated pairs
    history: float  # how often the history's opinion ordered a pair as the likes did
    model: float  # the model, on the same pairs
    blend: float  # the model's output and the opinion, each scaled by its spread, added
    k: int = K_OPINION
    min_pairs: int = 30  # eval's MIN_JUDGED_PAIRS: fewer are not worth a percentage
    blend_wins: int = 0  # pairs the blend orders right and the model wrong
    blend_losses: int = 0  # and the other way round

    @property
    def enough(self) -> bool:
        return self.pairs >= self.min_pairs

    @property
    def blend_better(self) -> bool:
        """Offer the blend only where it measures better than the model alone: on the pairs
        where the two disagree, it wins clearly more often (a sign test at about 95%)."""
        gained, n = self.blend_wins - self.blend_losses, self.blend_wins + self.blend_losses
        return self.enough and gained > 0 and gained > SURE_Z * math.sqrt(n)

    def verdict(self) -> str:
        if not self.pairs:
            return "no evaluated pair has two posts with earlier posts to judge them from."
        head = (
            f"your similar earlier posts (k={self.k}, similarity-weighted mean score) ordered "
            f"{self.history:.1%} of {self.pairs:,} pairs right; the model {self.model:.1%} of "
            "the same pairs"
        )
        if not self.enough:
            return head + f" (under {self.min_pairs} pairs: too few to tell)."
        if self.blend_better:
            return head + f"; the two together {self.blend:.1%}: the blend measures better."
        return (
            head + f"; the two together {self.blend:.1%}, not clearly better than the model: "
            "the history is shown as evidence, not blended."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "pairs": self.pairs,
            "of_pairs": self.of_pairs,
            "history_accuracy": self.history,
            "model_accuracy": self.model,
            "blend_accuracy": self.blend,
            "blend_better": self.blend_better,
            "blend_wins": self.blend_wins,
            "blend_losses": self.blend_losses,
            "verdict": self.verdict(),
        }


def _right(
    values: np.ndarray, a: np.ndarray, b: np.ndarray, likes_a: np.ndarray, likes_b: np.ndarray
) -> np.ndarray:
    dv = np.sign(values[a] - values[b])
    dl = np.sign(likes_a - likes_b)
    return np.where(dv == 0, 0.5, (dv == dl).astype(np.float64))


def measure_opinion(
    frame: pd.DataFrame, pairs_table: pd.DataFrame, k: int = K_OPINION, min_pairs: int = 30
) -> HistoryOpinion:
    """The opinion (`frame["opinion"]`) against the model (`frame["pred"]`) on the evaluated
    pairs (`pairs_table`, as `eval` selected them: columns a, b, likes_a, likes_b, correct)."""
    names = frame["image"].astype(str).to_numpy()
    at = {n: r for r, n in enumerate(names)}
    a = np.array([at.get(str(x), -1) for x in pairs_table["a"]], dtype=int)
    b = np.array([at.get(str(x), -1) for x in pairs_table["b"]], dtype=int)
    op = frame["opinion"].to_numpy(dtype=np.float64)
    pred = frame["pred"].to_numpy(dtype=np.float64)
    ok = (a >= 0) & (b >= 0)
    ok[ok] &= np.isfinite(op[a[ok]]) & np.isfinite(op[b[ok]])
    if not ok.any():
        nan = float("nan")
        return HistoryOpinion(0, len(pairs_table), nan, nan, nan, k, min_pairs)
    a, b = a[ok], b[ok]
    la = pairs_table["likes_a"].to_numpy(dtype=np.float64)[ok]
    lb = pairs_table["likes_b"].to_numpy(dtype=np.float64)[ok]
    model = pairs_table["correct"].to_numpy(dtype=np.float64)[ok]
    has = np.isfinite(op) & np.isfinite(pred)
    spread = [max(float(np.std(v[has])), 1e-12) for v in (pred, op)]
    blend = pred / spread[0] + np.nan_to_num(op) / spread[1]
    mixed = _right(blend, a, b, la, lb)
    return HistoryOpinion(
        int(ok.sum()),
        len(pairs_table),
        float(_right(op, a, b, la, lb).mean()),
        float(model.mean()),
        float(mixed.mean()),
        k,
        min_pairs,
        int(((mixed == 1) & (model == 0)).sum()),
        int(((mixed == 0) & (model == 1)).sum()),
    )
