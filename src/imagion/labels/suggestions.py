"""Which content goes with high scores: the original design's "top 5 labels per score" table, label lift with
intervals, and the one-line suggestion for an image ("Including these in your post may improve it")."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from imagion.errors import InputError, OptionError
from imagion.files import GENERATOR, parse_json, read_bounded, write_text_atomic
from imagion.labels.providers import related_labels
from imagion.settings import bundled_stats_path

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SUGGEST_MAX = 5
MAX_STATS_BYTES = 16 * 2**20  # label statistics are ~100 KB; a stats file is never this big


@dataclass
class LabelStats:
    """Per-label statistics of one provider on one catalog (small, shippable as JSON)."""

    provider: str
    posts: int
    mean_score: float
    lift: list[LiftRow] = field(default_factory=list)
    per_bucket: dict[str, list[BucketRow]] = field(default_factory=dict)  # "0".."10"
    min_support: int = 5
    bundled: bool = False  # the statistics shipped with imagion (ig-celeb12)

    def to_dict(self) -> dict:
        return {
            "generator": GENERATOR,  # the mark that lets a later --save-stats replace it
            "provider": self.provider,
            "posts": self.posts,
            "mean_score": self.mean_score,
            "min_support": self.min_support,
            "per_bucket": self.per_bucket,
            "lift": self.lift,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelStats:
        return cls(
            d["provider"],
            d["posts"],
            d["mean_score"],
            d["lift"],
            d["per_bucket"],
            d.get("min_support", 5),
        )

    @classmethod
    def load_checked(cls, path: Path) -> LabelStats:
        """Label statistics from `imagion labels --save-stats`, or ImagionError saying why not."""
        raw = read_bounded(Path(path), MAX_STATS_BYTES, "`stats`")
        data = parse_json(raw, f"`stats` {path}")
        try:
            stats = cls.from_dict(data)  # type: ignore[arg-type]
            ok = isinstance(stats.lift, list) and all(
                isinstance(r, dict) and {"label", "support", "lift", "ci95"} <= set(r)
                for r in stats.lift
            )
        except FileNotFoundError:
            raise OptionError("stats", path, "no such file.") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                f"`stats` {path}: not label statistics ({type(exc).__name__}); "
                "write them with `imagion labels` and `save_stats` FILE."
            ) from None
        if not ok:
            raise InputError(
                f"`stats` {path}: not label statistics; write them with `imagion labels` and `save_stats` FILE."
            )
        return stats

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> LabelStats:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


class LiftRow(TypedDict):
    """One label's lift: mean score of posts with it − without it, with a 95% interval."""

    label: str
    support: int
    mean_with: float
    mean_without: float
    lift: float
    ci95: list[float]


class BucketRow(TypedDict):
    """A label characteristic of one score bucket (the original design's "top labels per score")."""

    label: str
    posts: int
    share: float


def _lift_rows(scores: np.ndarray, lab: pd.DataFrame, min_support: int) -> list[LiftRow]:
    import pandas as pd

    n, total, total_sq = len(scores), scores.sum(), (scores**2).sum()
    g = lab.groupby("label")["score"]
    agg = pd.DataFrame({"support": g.size(), "sum": g.sum(), "sq": g.apply(lambda s: (s**2).sum())})
    rows: list[LiftRow] = []
    for label, r in agg.iterrows():
        k = int(r["support"])
        if k < min_support or n - k < 2:
            continue
        m1 = r["sum"] / k
        m0 = (total - r["sum"]) / (n - k)
        v1 = max(r["sq"] / k - m1 * m1, 0.0) * k / max(k - 1, 1)
        v0 = max((total_sq - r["sq"]) / (n - k) - m0 * m0, 0.0) * (n - k) / max(n - k - 1, 1)
        se = math.sqrt(v1 / k + v0 / (n - k))
        d = m1 - m0
        ci = [round(d - 1.96 * se, 3), round(d + 1.96 * se, 3)]
        rows.append(
            LiftRow(
                label=str(label),
                support=k,
                mean_with=round(m1, 3),
                mean_without=round(m0, 3),
                lift=round(d, 3),
                ci95=ci,
            )
        )
    rows.sort(key=lambda r: -r["lift"])
    return rows


def _per_bucket(
    posts: pd.DataFrame, scores: np.ndarray, lab: pd.DataFrame, min_support: int, top: int
) -> dict[str, list[BucketRow]]:
    """Per score bucket, the labels most over-represented there (smoothed ratio)."""
    import pandas as pd

    from imagion.catalog.scoring import bucket

    n = len(scores)
    b_post = pd.Series(bucket(scores), index=posts["item"].to_numpy() if "item" in posts else None)
    lab = lab.assign(bucket=bucket(lab["score"].to_numpy(dtype=float)))
    overall = lab.groupby("label").size()
    out: dict[str, list[BucketRow]] = {}
    for b in range(11):
        n_b = int((b_post == b).sum())
        in_b = lab[lab["bucket"] == b].groupby("label").size()
        in_b = in_b[overall[in_b.index] >= min_support]  # hide rare labels here too
        ratio = ((in_b + 1) / (n_b + 2)) / ((overall[in_b.index] + 1) / (n + 2))
        # labels seen at least twice in the bucket first, then by how over-represented they are
        rank = pd.DataFrame({"repeat": in_b >= 2, "ratio": ratio, "count": in_b})
        best = rank.sort_values(["repeat", "ratio", "count"], ascending=False, kind="stable")
        out[str(b)] = [
            BucketRow(
                label=str(lb), posts=int(in_b[lb]), share=round(float(in_b[lb]) / max(n_b, 1), 3)
            )
            for lb in best.head(top).index
        ]
    return out


def label_stats(
    posts: pd.DataFrame, labelled: pd.DataFrame, provider: str, min_support: int = 5, top: int = 5
) -> LabelStats:
    """`posts`: item, score (one row per labelled post); `labelled`: item, score, label rows."""
    posts = posts.drop_duplicates("item") if "item" in posts else posts
    scores = posts["score"].to_numpy(dtype=float)
    lab = labelled.drop_duplicates(["item", "label"])
    return LabelStats(
        provider,
        len(scores),
        float(scores.mean()) if len(scores) else float("nan"),
        _lift_rows(scores, lab, min_support),
        _per_bucket(posts, scores, lab, min_support, top),
        min_support,
    )


def bucket_phrase(score: float) -> str:
    if score >= 7:
        return "a high score"
    if score >= 4:
        return "an average score"
    return "a low score"


@dataclass
class Suggestion:
    text: str  # the sentence for this image: its advice and evidence, or why there is none
    level: str  # "a high score" | "an average score" | "a low score"
    add: list[str]  # labels worth including (each with a lift interval above zero)
    advice: str = ""  # the advice with its evidence (the same for photos that lack the same labels)
    avoid: list[str] = field(default_factory=list)  # labels it shows whose lift is clearly below 0
    caution: str = ""  # what is said about them, with the evidence


def _no_evidence(stats: LabelStats | None) -> str:
    if stats is None:
        return "No content suggestion: no label statistics (run `imagion labels` with `save_stats` on your catalog)."
    if stats.bundled:
        return (
            f"No content suggestion: the bundled statistics come from {stats.posts:,} posts and "
            "no label's effect is clearly above zero. For advice from your own posts, write "
            "your catalog's statistics (`imagion labels` with `save_stats`) and pass that file "
            "as `stats`."
        )
    return (
        f"No content suggestion: in these {stats.provider} statistics ({stats.posts:,} posts) no "
        "label's effect is clearly above zero yet; more posts or another provider may show one."
    )


def family_z(tested: int) -> float:
    """The z of a 95% interval that holds for all `tested` labels at once (Bonferroni): with
    hundreds of labels, some plain 95% intervals clear zero by chance alone."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - 0.025 / max(tested, 1))


def _clear(stats: LabelStats, sign: int) -> list[LiftRow]:
    """Labels whose lift is on the `sign` side of zero with 95% confidence jointly over every
    label tested (at the statistics' minimum support), strongest first."""
    tested = [r for r in stats.lift if r["support"] >= stats.min_support]
    z = family_z(len(tested))
    out = []
    for r in tested:
        se = (r["ci95"][1] - r["ci95"][0]) / (2 * 1.96)
        if sign * r["lift"] - z * se > 0:
            out.append(r)
    return sorted(out, key=lambda r: -sign * r["lift"])


def clearly_positive(stats: LabelStats) -> list[LiftRow]:
    """Labels whose lift is clearly above zero (see `_clear`), best first."""
    return _clear(stats, +1)


def clearly_negative(stats: LabelStats) -> list[LiftRow]:
    """Labels whose lift is clearly below zero (see `_clear`), worst first."""
    return _clear(stats, -1)


def evidence(rows: list[LiftRow], stats: LabelStats) -> str:
    """ "photos showing mountains scored 1.0 above their account's other posts on average (59
    posts of 10,743)": what a label's lift means (the 0–10 score of posts with it minus that of
    the account's posts without it), in words, with how many posts it rests on."""
    parts = [
        f"{r['label']} scored {abs(r['lift']):.1f} {'above' if r['lift'] >= 0 else 'below'} "
        f"their account's other posts on average ({r['support']:,} posts of {stats.posts:,})"
        for r in rows
    ]
    return "photos showing " + "; ".join(parts)


def suggest(
    labels: list[str], score: float, stats: LabelStats | None, seen: list[str] | None = None
) -> Suggestion:
    """Advice for one image: up to 5 labels with a lift clearly above zero (`clearly_positive`)
    that the image does not already show (`labels`: every label found in it, and their
    relatives: a landscape is not told to add mountains), with the evidence; and, for the labels
    it is seen to show (`seen`), those whose lift is clearly below zero. Nothing weaker is ever
    named."""
    level = bucket_phrase(score)
    have = related_labels(labels)
    reliable = (
        [] if stats is None else [r for r in clearly_positive(stats) if r["label"] not in have]
    )[:SUGGEST_MAX]
    shown = set(labels if seen is None else seen)
    bad = [] if stats is None else [r for r in clearly_negative(stats) if r["label"] in shown]
    caution = evidence(bad, stats) + ": it may lower this one" if bad and stats else ""
    picks = [r["label"] for r in reliable]
    advice = ""
    if picks and stats is not None:
        advice = f"{evidence(reliable, stats)}: including some may help"
    text = "; ".join(t for t in (caution, advice) if t)
    if not text and stats is not None and clearly_positive(stats):
        # never "no label's effect is clearly above zero" beside another photo's advice
        shows = ", ".join(r["label"] for r in clearly_positive(stats)[:SUGGEST_MAX])
        text = f"No content suggestion: it already shows what scored clearly higher ({shows})"
    elif not text:
        text = _no_evidence(stats) if not bad else ""
    text = text.rstrip(".")
    return Suggestion(
        text[:1].upper() + text[1:] + ("." if text else ""),
        level,
        picks,
        advice,
        [r["label"] for r in bad],
        caution,
    )


def load_bundled_stats() -> LabelStats | None:
    path = bundled_stats_path()
    if not path.is_file():
        return None
    stats = LabelStats.load(path)
    stats.bundled = True
    return stats
