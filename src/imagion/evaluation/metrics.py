"""`imagion eval`: pairwise accuracy on same-account pairs, with honest statistics.

A pair is two posts of one account with different like counts; the model is right when it orders
them as their likes do. A predicted tie counts as half right (so a constant scorer gets exactly
50%). The 95% interval comes from a bootstrap over accounts, since pairs of one account are not
independent. Baselines are scored on the very same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import pandas as pd

from imagion.errors import CatalogError, OptionError
from imagion.evaluation.calibration import (
    CalibrationFigures,
    calibration_metrics,
    pair_probabilities,
)
from imagion.evaluation.history_opinion import HistoryOpinion
from imagion.evaluation.pairs import pair_outcomes, same_account_pairs
from imagion.models.expected_score import ScoreFigures, interval_figures

REFERENCE_POINTS = {
    "original model (2019)": 0.5024,
    "average person": 0.475,
    "expert": 0.675,
    "Ding et al. 2019, discriminable pairs": 0.7665,
}


MIN_JUDGED_PAIRS = 30  # below this, an accuracy is not worth a percentage
RATIO_BANDS = (1.0, 1.5, 2.0, 3.0)  # "where the model is useful": pairs whose likes differ by ≥ R×


def likes_ratio(likes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """max/min likes of each pair (inf when the smaller count is 0)."""
    hi = np.maximum(likes[i], likes[j])
    lo = np.minimum(likes[i], likes[j])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lo > 0, hi / np.where(lo > 0, lo, 1.0), np.inf)


class AccountFigures(TypedDict):
    """One account's pairwise accuracy and rank correlations."""

    account: str
    posts: int
    pairs: int
    accuracy: float
    spearman: float
    kendall: float


class PairExample(TypedDict):
    """One evaluated pair (`show_pairs`): images (names, or row numbers), likes, predictions."""

    account: str
    a: str | int
    likes_a: int
    pred_a: float
    b: str | int
    likes_b: int
    pred_b: float
    correct: bool


class RatioBand(TypedDict):
    """Accuracy on the pairs whose likes differ by at least `min_ratio` (None: no such pair)."""

    min_ratio: float
    pairs: int
    accuracy: float | None
    ci95: list[float] | None


@dataclass
class EvalReport:
    accuracy: float
    ci95: tuple[float, float]
    pairs: int
    ties: int
    accounts: int
    baselines: dict[str, float]
    per_account: list[AccountFigures]
    spearman: float
    kendall: float
    examples: list[PairExample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calibration: CalibrationFigures | None = None  # log loss, Brier, ECE, reliability bins
    by_ratio: list[RatioBand] = field(default_factory=list)  # accuracy by likes ratio
    in_sample: bool = False  # some evaluated posts were trained on
    label: str = ""  # what was evaluated: the checkpoint, or the CV and its recipe
    skipped: list[str] = field(default_factory=list)  # images that could not be read
    pairs_table: pd.DataFrame | None = field(default=None, repr=False)  # every evaluated pair
    scores: ScoreFigures | None = None  # the shown scores: 80% interval coverage, bins
    scores_unmeasured: str | None = None  # why `scores` could not be measured, when it could not
    frame: pd.DataFrame | None = field(default=None, repr=False)  # the evaluated predictions
    history: HistoryOpinion | None = None  # the history's second opinion (time-respecting evals)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "ci95": list(self.ci95),
            "pairs": self.pairs,
            "ties": self.ties,
            "accounts": self.accounts,
            "baselines": self.baselines,
            "spearman": self.spearman,
            "kendall": self.kendall,
            "reference_points": REFERENCE_POINTS,
            "per_account": self.per_account,
            "examples": self.examples,
            "notes": self.notes,
            "calibration": self.calibration,
            "by_ratio": self.by_ratio,
            "scores": self.scores,
            "scores_unmeasured": self.scores_unmeasured,
            "in_sample": self.in_sample,
            "enough_pairs": self.pairs >= MIN_JUDGED_PAIRS,
            "history_opinion": None if self.history is None else self.history.to_dict(),
        }


def _rank_corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Spearman and Kendall (tau-b) correlation of two short vectors."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    spearman = float(np.corrcoef(ra, rb)[0, 1])
    i, j = np.triu_indices(len(a), k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = np.sqrt((sa != 0).sum() * (sb != 0).sum())
    kendall = float((sa * sb).sum() / denom) if denom else float("nan")
    return spearman, kendall


def bootstrap_ci(
    correct: np.ndarray, count: np.ndarray, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of sum(correct)/sum(count), resampling accounts with replacement."""
    if len(count) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(count), size=(reps, len(count)))
    c, n = correct[idx].sum(axis=1), count[idx].sum(axis=1)
    acc = c[n > 0] / n[n > 0]
    return float(np.quantile(acc, 0.025)), float(np.quantile(acc, 0.975))


def post_bootstrap_ci(
    i: np.ndarray, j: np.ndarray, correct: np.ndarray, n_posts: int, reps: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% interval for one account: resample its posts with replacement; a pair counts as
    often as both its posts are drawn (pairs of one account share posts, so resampling pairs
    would claim too much)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_posts, np.full(n_posts, 1.0 / n_posts), size=reps).astype(np.float64)
    weight = counts[:, i] * counts[:, j]
    total = weight.sum(axis=1)
    acc = (weight @ correct)[total > 0] / total[total > 0]
    if not len(acc):
        return float("nan"), float("nan")
    return float(np.quantile(acc, 0.025)), float(np.quantile(acc, 0.975))


def check_options(
    *, min_gap: float, min_ratio: float, pairs: int | None, seed: int, show_pairs: int
) -> None:
    """The measuring options in range, before any work (`evaluate` and `cross_validate` call
    this first): one OptionError naming the parameter otherwise."""
    if pairs is not None and pairs < 1:
        raise OptionError("pairs", pairs, "sample at least 1 pair (or leave it out for all pairs).")
    if min_gap < 0 or not np.isfinite(min_gap):
        raise OptionError("min_gap", min_gap, "use a gap of 0 or more.")
    if not np.isfinite(min_ratio) or min_ratio < 1:
        raise OptionError("min_ratio", min_ratio, "use a likes ratio of 1 or more (e.g. 2).")
    if not 0 <= seed < 2**32:
        raise OptionError("seed", seed, f"use a seed from 0 to {2**32 - 1:,}.")
    if show_pairs < 0:
        raise OptionError("show_pairs", show_pairs, "use 0 or more example pairs.")


def _select_pairs(
    df: pd.DataFrame,
    likes: np.ndarray,
    min_gap: float,
    pairs: int | None,
    seed: int,
    min_ratio: float = 1.0,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Same-account pairs with different likes; optionally a minimum z gap, a minimum likes
    ratio and a sample (what it could not honour goes into `notes`)."""
    notes = [] if notes is None else notes
    i, j, ties = same_account_pairs(df["account"].to_numpy(), likes)
    if min_ratio > 1:
        keep = likes_ratio(likes, i, j) >= min_ratio
        if len(i) and not keep.any():
            raise OptionError(
                "min_ratio",
                f"{min_ratio:g}",
                f"no same-account pair's likes differ by {min_ratio:g}× or more.",
            )
        i, j = i[keep], j[keep]
    if min_gap > 0:
        if "zscore" not in df or df["zscore"].isna().all():
            raise OptionError(
                "min_gap", min_gap, "needs standardized likes: run `imagion score` first."
            )
        z = df["zscore"].to_numpy(dtype=np.float64)
        gap = np.abs(z[i] - z[j])
        keep = gap >= min_gap
        if len(i) and not keep.any():
            raise OptionError(
                "min_gap",
                f"{min_gap:g}",
                f"no same-account pair's standardized likes differ that much "
                f"(the largest gap here is {np.nanmax(gap):.2f}).",
            )
        i, j = i[keep], j[keep]
    if pairs is not None and pairs < len(i):
        pick = np.sort(np.random.default_rng(seed).choice(len(i), size=pairs, replace=False))
        i, j = i[pick], j[pick]
    elif pairs is not None and pairs > len(i):
        notes.append(f"`pairs` {pairs}: only {len(i):,} pairs exist here; all of them are used.")
    if not len(i):
        raise CatalogError(
            "no same-account pairs with different likes to evaluate (need ≥ 2 posts per account)."
        )
    return i, j, ties


def baselines(
    df: pd.DataFrame, likes: np.ndarray, i: np.ndarray, j: np.ndarray
) -> dict[str, float]:
    """Simple rules scored on the very same pairs."""
    out = {"chance": 0.5}
    candidates = {
        "newer wins": df.get("posted_at"),
        "longer caption wins": df["caption"].fillna("").str.len() if "caption" in df else None,
        "brighter wins": df.get("brightness"),
    }
    for name, col in candidates.items():
        if col is not None and col.notna().any():
            out[name] = float(
                pair_outcomes(col.to_numpy(dtype=np.float64, na_value=np.nan), likes, i, j).mean()
            )
    return out


def per_account(
    df: pd.DataFrame, likes: np.ndarray, codes: np.ndarray, uniques: np.ndarray, correct: np.ndarray
) -> list[AccountFigures]:
    """Accuracy and rank correlations of each account."""
    per_c = np.bincount(codes, weights=correct)
    per_n = np.bincount(codes).astype(np.float64)
    groups, pred = df["account"].to_numpy(), df["pred"].to_numpy(dtype=float)
    rows: list[AccountFigures] = []
    for k, acc in enumerate(uniques):
        idx = np.flatnonzero(groups == acc)
        s, t = _rank_corr(pred[idx], likes[idx])
        rows.append(
            AccountFigures(
                account=str(acc),
                posts=len(idx),
                pairs=int(per_n[k]),
                accuracy=float(per_c[k] / per_n[k]),
                spearman=s,
                kendall=t,
            )
        )
    return rows


def _examples(
    df: pd.DataFrame, likes: np.ndarray, i: np.ndarray, j: np.ndarray, correct: np.ndarray, n: int
) -> list[PairExample]:
    def name(k: int) -> str | int:
        return str(df["image"].iloc[k]) if "image" in df else k

    out: list[PairExample] = []
    for k in range(min(n, len(i))):
        a, b = int(i[k]), int(j[k])
        out.append(
            PairExample(
                account=str(df["account"].iloc[a]),
                a=name(a),
                likes_a=int(likes[a]),
                pred_a=float(df["pred"].iloc[a]),
                b=name(b),
                likes_b=int(likes[b]),
                pred_b=float(df["pred"].iloc[b]),
                correct=bool(correct[k] == 1.0),
            )
        )
    return out


PAIR_COLUMNS = ("account", "a", "b", "likes_a", "likes_b", "pred_a", "pred_b", "p_a_beats_b")


def _pair_table(
    df: pd.DataFrame, likes: np.ndarray, i: np.ndarray, j: np.ndarray, correct: np.ndarray
) -> tuple[pd.DataFrame, CalibrationFigures | None]:
    """Every pair with its probability (when the model has a calibrated one), and the
    calibration figures of those probabilities."""
    pred = df["pred"].to_numpy(dtype=np.float64)
    scale = (
        df["pair_scale"].to_numpy(dtype=np.float64)
        if "pair_scale" in df
        else np.full(len(df), np.nan)
    )
    has = np.isfinite(scale[i])
    p = np.where(has, pair_probabilities(pred, np.nan_to_num(scale), i, j), np.nan)
    ids = (
        df["post_id"].astype(str)
        if "post_id" in df
        else pd.Series(df.index.astype(str), index=df.index)
    )
    names = df["image"].astype(str).where(df["image"].notna(), ids) if "image" in df else ids
    table = pd.DataFrame(
        {
            "account": df["account"].to_numpy()[i],
            "a": names.to_numpy()[i],
            "b": names.to_numpy()[j],
            "likes_a": likes[i].astype(np.int64),
            "likes_b": likes[j].astype(np.int64),
            "pred_a": pred[i],
            "pred_b": pred[j],
            "p_a_beats_b": p,
            "correct": correct,
        }
    )
    if not has.any():
        return table, None
    y = (likes[i] > likes[j]).astype(float)
    return table, calibration_metrics(p[has], y[has])


def accuracy_by_ratio(
    likes: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    correct: np.ndarray,
    codes: np.ndarray,
    reps: int = 2000,
    seed: int = 0,
) -> list[RatioBand]:
    """Accuracy on the pairs whose likes differ by at least each ratio of RATIO_BANDS, with
    pair counts and a 95% interval (bootstrap over accounts)."""
    ratio = likes_ratio(likes, i, j)
    rows: list[RatioBand] = []
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    for r in RATIO_BANDS:
        keep = ratio >= r
        n = int(keep.sum())
        if not n:
            rows.append(RatioBand(min_ratio=r, pairs=0, accuracy=None, ci95=None))
            continue
        per_c = np.bincount(codes[keep], weights=correct[keep], minlength=n_codes)
        per_n = np.bincount(codes[keep], minlength=n_codes).astype(np.float64)
        has = per_n > 0
        ci = bootstrap_ci(per_c[has], per_n[has], reps=reps, seed=seed) if has.sum() > 1 else None
        rows.append(
            RatioBand(
                min_ratio=r,
                pairs=n,
                accuracy=float(correct[keep].mean()),
                ci95=list(ci) if ci else None,
            )
        )
    return rows


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def shown_score_figures(df: pd.DataFrame) -> tuple[ScoreFigures | None, str | None]:
    """The shown scores' 80% range coverage and bins, on the posts the range was not fitted on
    (`range_fitted`: its validation posts), and why it cannot be measured when none is left."""
    if not {"expected", "low", "high", "score"} <= set(df.columns):
        return None, None
    fitted = df["range_fitted"].to_numpy(dtype=bool) if "range_fitted" in df else None
    if fitted is None or not fitted.any():
        return interval_figures(df["expected"], df["low"], df["high"], df["score"]), None
    rest = df[~fitted]
    scores = interval_figures(rest["expected"], rest["low"], rest["high"], rest["score"])
    if scores is not None:
        scores["left_out"] = int(fitted.sum())
        return scores, None
    n = int(fitted.sum())
    return None, (
        f"the 80% range was fitted on these {n} posts (the model's validation posts), so how "
        "often it holds cannot be measured on them; `cv` (or `cv` time) measures it on posts "
        "nothing was fitted on"
    )


def evaluate(
    df: pd.DataFrame,
    *,
    min_gap: float = 0.0,
    pairs: int | None = None,
    seed: int = 0,
    reps: int = 2000,
    show_pairs: int = 0,
    min_ratio: float = 1.0,
) -> EvalReport:
    """Evaluate predictions `pred` against `likes` within `account`.

    `df` needs account, likes, pred; optional zscore (for min_gap), posted_at, caption, brightness,
    image. Rows with a missing prediction are ignored.
    """
    check_options(
        min_gap=min_gap, min_ratio=min_ratio, pairs=pairs, seed=seed, show_pairs=show_pairs
    )
    df = df[np.isfinite(df["pred"].to_numpy(dtype=float))].reset_index(drop=True)
    likes = df["likes"].to_numpy(dtype=np.float64)
    notes: list[str] = []
    i, j, ties = _select_pairs(df, likes, min_gap, pairs, seed, min_ratio, notes)
    correct = pair_outcomes(df["pred"].to_numpy(dtype=np.float64), likes, i, j)
    codes, uniques = pd.factorize(df["account"].to_numpy()[i])
    accounts = per_account(df, likes, codes, np.asarray(uniques), correct)
    per_c = np.bincount(codes, weights=correct)
    per_n = np.bincount(codes).astype(np.float64)
    table, calibration = _pair_table(df, likes, i, j, correct)
    scores, unmeasured = shown_score_figures(df)
    return EvalReport(
        scores=scores,
        scores_unmeasured=unmeasured,
        frame=df,
        accuracy=float(correct.mean()),
        ci95=bootstrap_ci(per_c, per_n, reps=reps, seed=seed)
        if len(uniques) > 1
        else post_bootstrap_ci(i, j, correct, len(df), seed=seed),
        pairs=len(i),
        ties=ties,
        accounts=len(uniques),
        baselines=baselines(df, likes, i, j),
        per_account=accounts,
        spearman=_mean([r["spearman"] for r in accounts]),
        kendall=_mean([r["kendall"] for r in accounts]),
        examples=_examples(df, likes, i, j, correct, show_pairs),
        calibration=calibration,
        pairs_table=table,
        by_ratio=accuracy_by_ratio(likes, i, j, correct, codes, reps=reps, seed=seed),
        notes=notes,
    )
