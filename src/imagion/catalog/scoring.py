"""The image score: likes standardized within each account, mapped to 0–10 across accounts.

Step 1 (per account): z = (likes − mean) / std over the account's usable posts — all of them by
default, or with `window=N` over the N posts published just before (the original design's "past x posts").
Step 2 (across accounts): z is mapped into [0, 10] by one of

* ``percentile`` (default): 10 × the empirical percentile of z among all scored posts, so 5 is
  the median post and 9 the top tenth; one outlier cannot squash everybody else;
* ``normal``: 10 × Φ(z), the normal CDF — a fixed scale, independent of the other accounts;
* ``minmax``: the original design's (z − min) / (max − min) × 10, kept for comparison.

Both steps are monotone, so within an account a post with more likes never scores lower.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import pandas as pd

from imagion.catalog.store import Catalog, Columns
from imagion.choices import ScoreMapping, ScoreMetric
from imagion.errors import CatalogError, OptionError

REASON_HIDDEN = "like count hidden or missing"
REASON_FEW = "account has too few usable posts"
REASON_SPREAD = "all likes equal (zero spread)"
MAX_WINDOW = 100_000  # posts before each post; more is "all posts" (leave `window` out)
REASON_HISTORY = "too few earlier posts in the window"


class ScoreSettings(TypedDict, total=False):
    """How the scores were made (`imagion score`'s options), stored with the catalog."""

    metric: str
    mapping: str
    window: int | None
    min_posts: int
    log: bool


@dataclass
class ScoreReport:
    scored: int = 0
    accounts_scored: int = 0
    unscored: dict[str, int] = field(default_factory=dict)
    unscored_accounts: dict[str, int] = field(default_factory=dict)
    histogram: list[int] = field(default_factory=lambda: [0] * 11)
    settings: ScoreSettings = field(default_factory=lambda: ScoreSettings())

    def to_dict(self) -> dict:
        return {
            "scored": self.scored,
            "accounts_scored": self.accounts_scored,
            "unscored": self.unscored,
            "unscored_accounts": self.unscored_accounts,
            "histogram": {str(i): n for i, n in enumerate(self.histogram)},
            "settings": self.settings,
        }


def standardize(
    account: np.ndarray,
    likes: np.ndarray,
    *,
    window: int | None = None,
    min_posts: int = 3,
    log: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-account z-scores of `likes` (rows must be sorted by account, then time).

    Returns (z, reason): z is NaN where a post gets no score and `reason` holds the index into
    (0 = scored, 1 hidden, 2 too few, 3 zero spread, 4 no history).
    """
    n = len(likes)
    x = np.asarray(likes, dtype=np.float64)
    usable = np.isfinite(x) & (x >= 0)
    x = np.where(usable, x, np.nan)
    if log:
        x = np.log1p(x)
    codes = pd.factorize(np.asarray(account))[0]
    if n and np.any(np.diff(codes) < 0):
        raise ValueError("rows must be grouped by account")
    reason = np.where(usable, 0, 1).astype(np.int8)
    frame = pd.DataFrame({"g": codes, "x": x})
    grouped = frame.groupby("g", sort=False)["x"]
    count = grouped.transform("count").to_numpy()
    mean = grouped.transform("mean").to_numpy()
    sq = (x - mean) ** 2
    var = pd.Series(sq).groupby(codes, sort=False).transform("mean").to_numpy()
    std = np.sqrt(var)
    few = usable & (count < min_posts)
    reason[few] = 2
    flat = usable & ~few & ~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
    reason[flat] = 3
    ok = reason == 0
    if window is None:
        z = np.where(ok, (x - mean) / np.where(ok, std, 1.0), np.nan)
        return z, reason
    if window < 2:
        raise OptionError("window", window, "use at least 2 posts.")
    if window > MAX_WINDOW:
        raise OptionError(
            "window", window, f"use at most {MAX_WINDOW:,} posts (or leave it out for all posts)."
        )
    return _windowed(x, mean, std, codes, ok, reason, window, min_posts)


def _windowed(
    x: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    codes: np.ndarray,
    ok: np.ndarray,
    reason: np.ndarray,
    window: int,
    min_posts: int,
) -> tuple[np.ndarray, np.ndarray]:
    """z against the `window` usable posts before each post (reason 4: too few of them).

    Works on per-account-normalized values so cumulative sums stay small (z is invariant to a
    per-account affine change)."""
    idx = np.flatnonzero(ok)
    xs = (x[idx] - mean[idx]) / std[idx]
    g = codes[idx]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1] if len(g) else np.array([], dtype=int)
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    pos = np.arange(len(g))
    lo = np.maximum(group_start, pos - window)
    k = pos - lo  # number of earlier posts in the window
    c1 = np.r_[0.0, np.cumsum(xs)]
    c2 = np.r_[0.0, np.cumsum(xs * xs)]
    s1 = c1[pos] - c1[lo]
    s2 = c2[pos] - c2[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s1 / k
        v = np.maximum(s2 / k - m * m, 0.0)
        zw = (xs - m) / np.sqrt(v)
    no_history = k < max(min_posts, 2)
    zero = ~no_history & ~(v > 1e-9)
    z = np.full(len(x), np.nan)
    good = ~no_history & ~zero
    z[idx[good]] = zw[good]
    reason[idx[no_history]] = 4
    reason[idx[zero]] = 3
    return z, reason


def to_score(z: np.ndarray, mapping: ScoreMapping = ScoreMapping.percentile) -> np.ndarray:
    """Map z-scores (NaN = unscored) into [0, 10]."""
    out = np.full(len(z), np.nan)
    ok = np.isfinite(z)
    zs = z[ok]
    if not len(zs):
        return out
    if mapping == ScoreMapping.percentile:
        ranks = pd.Series(zs).rank(method="average").to_numpy()
        out[ok] = 10.0 * (ranks - 1) / max(len(zs) - 1, 1) if len(zs) > 1 else 5.0
    elif mapping == ScoreMapping.normal:
        erf = np.frompyfunc(math.erf, 1, 1)
        out[ok] = 5.0 * (1.0 + erf(zs / math.sqrt(2.0)).astype(np.float64))
    else:
        lo, hi = zs.min(), zs.max()
        out[ok] = 10.0 * (zs - lo) / (hi - lo) if hi > lo else 5.0
    return np.clip(out, 0.0, 10.0)


def bucket(score: np.ndarray) -> np.ndarray:
    """The integer score bucket 0..10 (rounded to nearest)."""
    return np.clip(np.floor(np.asarray(score) + 0.5), 0, 10).astype(int)


REASONS = {1: REASON_HIDDEN, 2: REASON_FEW, 3: REASON_SPREAD, 4: REASON_HISTORY}


def metric_values(df: pd.DataFrame, metric: ScoreMetric) -> tuple[np.ndarray, str]:
    """The value each post's score standardizes (NaN where unknown), and why one is missing."""

    def column(name: str) -> np.ndarray:
        if name not in df:
            return np.full(len(df), np.nan)
        return df[name].to_numpy(dtype=np.float64, na_value=np.nan)

    likes = column("likes")
    if "likes_hidden" in df:
        likes = np.where(df["likes_hidden"].to_numpy(dtype=bool), np.nan, likes)
    if metric == ScoreMetric.likes:
        return likes, REASON_HIDDEN
    if metric == ScoreMetric.engagement:
        reach = column("reach")
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(reach > 0, likes / reach, np.nan)
        return rate, "no likes or no reach (engagement is likes per account reached)"
    return column(str(metric)), f"no {metric} count (Instagram's own exports have it)"


def score_frame(
    df: pd.DataFrame,
    *,
    window: int | None = None,
    min_posts: int = 3,
    log: bool = False,
    mapping: ScoreMapping = ScoreMapping.percentile,
    metric: ScoreMetric = ScoreMetric.likes,
) -> tuple[pd.DataFrame, ScoreReport]:
    """Score a frame with columns account, likes, likes_hidden, posted_at (and the metric's
    columns); returns (frame, report)."""
    if min_posts < 2:
        raise OptionError("min_posts", min_posts, "use at least 2 (a z-score needs a spread).")
    df = df.sort_values(["account", "posted_at"], kind="stable").reset_index(drop=True)
    values, missing = metric_values(df, ScoreMetric(metric))
    z, reason = standardize(
        df["account"].to_numpy(), values, window=window, min_posts=min_posts, log=log
    )
    df["zscore"] = z
    df["score"] = to_score(z, mapping)
    report = ScoreReport(
        settings=ScoreSettings(
            metric=str(metric), mapping=str(mapping), window=window, min_posts=min_posts, log=log
        )
    )
    ok = np.isfinite(df["score"].to_numpy())
    report.scored = int(ok.sum())
    report.accounts_scored = int(df.loc[ok, "account"].nunique())
    for code, text in (REASONS | {1: missing}).items():
        mask = reason == code
        if mask.any():
            report.unscored[text] = int(mask.sum())
            report.unscored_accounts[text] = int(df.loc[mask, "account"].nunique())
    if report.scored:
        report.histogram = np.bincount(bucket(df.loc[ok, "score"]), minlength=11).tolist()
    return df, report


def score_catalog(catalog: Catalog, **options: object) -> ScoreReport:
    """Score every post of the catalog and store zscore/score in one transaction that also
    reads the likes: an import cannot change them between the read and the write (it waits for
    the write lock), so no score is ever computed from likes that changed under it."""
    with catalog.transaction() as db:
        df = catalog.frame(Columns.SCORING)
        if df.empty:
            raise CatalogError(
                f"{catalog.path}: the catalog has no posts; run `imagion import` first."
            )
        df, report = score_frame(df, **options)  # type: ignore[arg-type]
        rows = [
            (
                None if not math.isfinite(z) else float(z),
                None if not math.isfinite(s) else float(s),
                int(i),
            )
            for z, s, i in zip(df["zscore"], df["score"], df["id"], strict=True)
        ]
        db.executemany("UPDATE posts SET zscore=?, score=? WHERE id=?", rows)
        catalog.set_meta(db, "score_settings", json.dumps(report.settings))
    return report
