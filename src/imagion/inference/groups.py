"""Near-duplicate groups: photos of the same moment (bursts, small reframings, exposure or filter
variants, re-saved copies) in one group, each group's best photo first.

Everything comes from the ranking pass itself, never a second decode: the backbone's pooled
features (the same forward pass that gives the score) and a perceptual hash of the decoded model
input. The photos are taken best first; each joins the group whose members it resembles most on
average (cosine similarity of the features, average linkage) when that average is at least
`similarity` (SIMILARITY unless moved), else starts a group. Two rules help where the features
alone might not: a photo whose perceptual hash (a 64-bit difference hash, and the mean colour)
matches a member's is a re-saved copy and joins it; a photo shot within BURST_SECONDS of a member
(EXIF capture time) needs BURST_EASING less similarity. A model without pooled features groups
re-saved copies only, and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagion.errors import ImagionError, OptionError
from imagion.inference.engine import Engine, open_engine
from imagion.inference.near_copies import (
    BURST_EASING,
    BURST_SECONDS,
    SIMILARITY,
    Pairing,
    candidate_pairs,
    unit_rows,
)
from imagion.inference.neighbours import report, reporting
from imagion.inference.photo_index import (  # noqa: F401 (fingerprints, capture_time: re-exported)
    PhotoIndex,
    capture_time,
    fingerprints,
    open_index,
    scored_pass,
)
from imagion.inference.quality import FLAG_PHRASES, Quality
from imagion.inference.rank import (
    ABOUT_EVEN,
    RANK_CSV,
    Ranked,
    RankRow,
    files_to_score,
    ranked,
)
from imagion.models.transforms import Calibration
from imagion.problems import joined
from imagion.progress import Progress

# A shot with a flag (inference/quality.py) leads its group over an unflawed near-copy only when
# the likes model is at least this sure it gets more likes ("likely", scores.odds_words).
CONFIDENT = 0.65

# `rank --groups --csv`: `rank --csv`'s columns and the group's, as in `rank --groups --json`
_AT = RANK_CSV.index("labels")
GROUPS_CSV = [*RANK_CSV[:_AT], "group", "best_in_group", "group_size", "p_beats_runner_up"]
GROUPS_CSV += ["chosen_for"]
GROUPS_CSV += RANK_CSV[_AT:]


@dataclass
class Shots:
    """What the ranking pass gives for grouping, row k for `paths[k]`."""

    paths: list[Path]
    features: np.ndarray | None  # N×F, L2-normalised (None: the model has no pooled features)
    hashes: np.ndarray  # N uint64 difference hashes of the model input
    colours: np.ndarray  # N×3 mean colour of the model input
    times: list[float | None] = field(default_factory=list)  # EXIF capture time (s), if any
    # the candidate pairs, found already for the near-copy flag (None: grouping finds them)
    pairing: Pairing | None = None


# (engine, items best first, their shots, progress) → problems met (e.g. past posts unreadable)
ShotsHook = Callable[[Engine, list[Ranked], Shots, Progress | None], list[str]]


def cluster(order: Sequence[int], shots: Shots, similarity: float = SIMILARITY) -> list[list[int]]:
    """Groups of row indices, each best first, in the order of their best (`order`: the rows,
    best first). Each photo is compared only with the groups of its candidate neighbours
    (imagion.inference.neighbours), which hold every group the rule could put it in."""
    rows = np.asarray(order, np.int64)
    n = len(rows)
    feats = shots.features
    times = [shots.times[i] for i in rows] if shots.times else [None] * n
    found = shots.pairing
    if found is not None and np.array_equal(found.order, rows):
        cand = found.found
    else:
        cand = candidate_pairs(feats, rows, shots.hashes, shots.colours, shots.times)
    width = feats.shape[1] if feats is not None else 0
    sums = np.zeros((64, width), np.float32)  # each group's feature sum (grows as needed)
    sizes = np.zeros(64, np.float32)
    first = np.full(64, np.inf)  # each group's capture times, first to last
    last = np.full(64, -np.inf)
    groups: list[list[int]] = []
    of_pos = np.full(n, -1, np.int64)
    for p in range(n):
        i = int(rows[p])
        near, resaved = cand.of(p)
        t = times[p]
        f = np.asarray(feats[i], np.float32) if feats is not None else None
        g: int | None = None
        if resaved.any():
            g = int(of_pos[near[resaved][0]])
        elif f is not None and len(near):
            gs = np.unique(of_pos[near])
            sim = sums[gs] @ f / sizes[gs]
            need = np.full(len(gs), similarity)
            if t is not None:
                need[(first[gs] - BURST_SECONDS <= t) & (t <= last[gs] + BURST_SECONDS)] -= (
                    BURST_EASING
                )
            best = int(np.argmax(sim - need))
            g = int(gs[best]) if sim[best] >= need[best] else None
        if g is None:
            g = len(groups)
            groups.append([])
            if g == len(sizes):  # double the room
                sums = np.concatenate([sums, np.zeros_like(sums)])
                sizes = np.concatenate([sizes, np.zeros_like(sizes)])
                first = np.concatenate([first, np.full_like(first, np.inf)])
                last = np.concatenate([last, np.full_like(last, -np.inf)])
        groups[g].append(i)
        sizes[g] += 1
        of_pos[p] = g
        if f is not None:
            sums[g] += f
        if t is not None:
            first[g], last[g] = min(first[g], t), max(last[g], t)
        if p % 4096 == 4095 or p == n - 1:
            report(p + 1, n, "grouping")
    return groups


@dataclass
class Group:
    """Photos of one moment, best first, and how sure the model is that the best beats the
    next best (None: no held-out calibration, or a group of one)."""

    number: int  # 1 = the group with the best photo
    shots: list[Ranked]
    p_beats_next: float | None = None
    even: int = 1  # shots about even with the best (< ABOUT_EVEN), the best included
    chosen_for: str | None = None  # why the technical quality put this shot first, if it did

    @property
    def best(self) -> Ranked:
        return self.shots[0]

    @property
    def runners_up(self) -> list[Ranked]:
        return self.shots[1:]

    def __len__(self) -> int:
        return len(self.shots)

    def verdict(self, calibrated: bool = True) -> str:
        """What a person reads: the rank in its group and how sure, worded by how sure it is
        (inside a group photos differ little, and the model mostly cannot tell them apart)."""
        n = len(self.shots)
        if n == 1:
            return "the only shot of this moment"
        head = f"#1 of {n} similar shots"
        if self.chosen_for is not None:
            return f"{head}: {self.chosen_for}"
        if self.p_beats_next is None:
            why = "" if calibrated else " (no held-out calibration)"
            return f"{head}; how likely it beats the next best is unknown for this model{why}"
        if self.even > 1:
            which = (
                "the two" if n == 2 else f"all {n}" if self.even == n else f"the top {self.even}"
            )
            return (
                f"{head}, but a toss-up between {which}: "
                f"{self.p_beats_next:.0%} likely to beat the next best"
            )
        return f"{head}; {self.p_beats_next:.0%} likely to beat the next best"


def make_groups(engine: Engine, items: list[Ranked], rows: list[list[int]]) -> list[Group]:
    """`rows`: each group's positions in `items` (best first)."""
    cal = engine.calibration
    groups = []
    for k, members in enumerate(rows):
        shots, why = lead([items[i] for i in members], cal)
        g = Group(k + 1, shots, chosen_for=why)
        if len(shots) > 1:
            g.p_beats_next = cal.win_probability(shots[0].raw, shots[1].raw)
            if g.p_beats_next is not None:
                ps = (cal.win_probability(shots[0].raw, s.raw) or 0.5 for s in shots[1:])
                g.even = 1 + sum(p < ABOUT_EVEN for p in ps)
        groups.append(g)
    return groups


def _flags(r: Ranked) -> list[str]:
    return r.quality.flags if r.quality is not None else []


# a shot is sharper than another only by at least this much: brightening a photo 3× adds hard
# clipped edges and up to 0.1 of sharpness; a blur that a person sees takes 0.4 (docs/quality.md)
SHARPER = 0.15


def _choose(contenders: list[Ranked]) -> tuple[Ranked, str]:
    """The shot a person would post, and the step that chose it: the fewest flags ("flags"),
    then the sharpest, by at least SHARPER ("sharper"), then the fewest highlights flattened at
    the top of its range, in steps of 2% of the pixels ("clipped"), then the least compressed up
    to JPEG quality 75 (a re-save at a lower quality loses to its original: "compressed"); the
    first in the likes model's order among those still even ("likes"). Sharpness comes before
    clipping: a blur lowers the clipped share of a white backdrop too. Clipping is counted at each
    shot's own top (`at_top`): a copy dimmed from a clipped photo keeps its flat top (it lost the
    same highlights), a brightened copy clipped anew gains one."""
    measured = [(s, s.quality) for s in contenders if s.quality is not None]
    if len(measured) < len(contenders):
        return contenders[0], "likes"

    def fewest(key: Callable[[Quality], float]) -> Callable[[list], list]:
        def keep(pool: list) -> list:
            least = min(key(q) for _, q in pool)
            return [(s, q) for s, q in pool if key(q) == least]

        return keep

    def sharpest(pool: list) -> list:
        most = max(_finite(q.sharpness) for _, q in pool)
        return [(s, q) for s, q in pool if _finite(q.sharpness) >= most - SHARPER]

    stages = [
        ("flags", fewest(lambda q: len(q.flags))),
        ("sharper", sharpest),
        ("clipped", fewest(lambda q: int(_finite(q.at_top, 0.0) / 0.02))),
        ("compressed", fewest(lambda q: -min(q.jpeg_quality or 100, 75))),
    ]
    pool, chosen_by = measured, "likes"
    for step, keep in stages:
        pool = keep(pool)
        if chosen_by == "likes" and pool[0][0] is not contenders[0]:
            chosen_by = step  # where the likes model's favourite dropped out
    return pool[0][0], chosen_by


def _finite(x: float, otherwise: float = float("-inf")) -> float:
    """`x`, or `otherwise` when it is not a number (a measure a table did not carry)."""
    return x if np.isfinite(x) else otherwise


def lead(shots: list[Ranked], cal: Calibration) -> tuple[list[Ranked], str | None]:
    """The group's shots (best first by the likes model) with the one to post first, and why
    when its technical quality chose it: among the shots the likes model is not confident
    (CONFIDENT) the favourite beats, the one `_choose` picks. A flawed favourite thus never beats
    an unflawed near-copy unless the likes model is confident."""
    top = shots[0]
    if len(shots) < 2 or top.quality is None:
        return shots, None

    def unsure(s: Ranked) -> bool:
        p = cal.win_probability(top.raw, s.raw)
        return p is None or p < CONFIDENT

    contenders = [top] + [s for s in shots[1:] if unsure(s)]
    best, step = _choose(contenders)
    if best is top:
        return shots, None
    p = cal.win_probability(top.raw, best.raw)
    if p is None:
        odds = "how likely the likes model's favourite does better is unknown for this model"
    elif p < ABOUT_EVEN:
        odds = f"the likes model cannot tell them apart ({p:.0%} for its favourite)"
    else:
        odds = f"the likes model is not sure ({p:.0%} for its favourite)"
    flags, n = _flags(best), len(contenders)
    if step == "flags":
        clean = [s for s in contenders if len(_flags(s)) == len(flags)]
        what = (
            "the only one without a flaw" if len(clean) == 1 and not flags else "the least flawed"
        )
        worse = next(f for f in _flags(top) if f not in flags)
        why = f"{what} (the likes model's favourite {FLAG_PHRASES[worse]})"
    elif step == "sharper":
        why = f"the sharpest of {n}"
    elif step == "clipped":
        why = f"the one with the fewest clipped highlights of {n}"
    else:
        why = f"the least compressed of {n} (re-saved copies lose to their original)"
    return [best] + [s for s in shots if s is not best], f"{why}; {odds}"


@dataclass
class GroupResult:
    """The photos in groups of near-duplicates, the group with the best photo first."""

    groups: list[Group]
    problems: list[str] = field(default_factory=list)
    model: str = ""
    arch: str = ""
    uncalibrated: bool = False  # the checkpoint has no calibration: scores are raw outputs
    similarity: float = SIMILARITY
    by_features: bool = True  # False: the model has no pooled features; re-saved copies only
    calibrated_on: str | None = None  # where the win probabilities were fitted (None: nowhere)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> Group:
        return self.groups[k]

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    @property
    def photos(self) -> int:
        return sum(len(g) for g in self.groups)

    def summary(self, noun: str = "photos") -> str:
        """ "50 photos in 10 groups of near-duplicates", or "48 photos, no near-duplicates"."""
        n = self.photos
        if len(self.groups) == n:
            return f"{n} {noun}, no near-duplicates" if n != 1 else f"1 {noun[:-1]}"
        return f"{n} {noun} in {len(self.groups)} groups of near-duplicates"

    def to_groups(self) -> list[dict[str, object]]:
        """`/api/pick`'s `groups`: each group with its number, size, verdict and its photos
        (the rows of `to_list`, best first)."""
        rows = self.to_list()
        calibrated = self.calibrated_on is not None
        out: list[dict[str, object]] = []
        for g in self.groups:
            p = None if g.p_beats_next is None else round(g.p_beats_next, 3)
            photos = [r for r in rows if r["group"] == g.number]
            out.append(
                {
                    "group": g.number,
                    "size": len(g),
                    "p_beats_runner_up": p,
                    "verdict": g.verdict(calibrated),
                    "photos": photos,
                }
            )
        return out

    def to_list(self) -> list[RankRow]:
        """`rank --groups --json`: every photo, group by group, each group's best first; `rank`
        is the photo's place in the whole ranking."""
        every = sorted(
            (r for g in self.groups for r in g.shots), key=lambda r: (-r.raw, str(r.path))
        )
        place = {id(r): k + 1 for k, r in enumerate(every)}
        rows = []
        for g in self.groups:
            for k, r in enumerate(g.shots):
                row = r.to_dict(rank=place[id(r)])
                row["group"], row["best_in_group"] = g.number, k == 0
                if k == 0:
                    row["group_size"] = len(g)
                    if g.chosen_for is not None:
                        row["chosen_for"] = g.chosen_for
                    if g.p_beats_next is not None:
                        row["p_beats_runner_up"] = round(g.p_beats_next, 3)
                rows.append(row)
        return rows


def _score_shots(
    engine: Engine,
    files: list[Path],
    batch_size: int | None,
    suggest: bool,
    progress: Progress | None,
    index: PhotoIndex | None = None,
) -> tuple[list[Ranked], Shots, list[str]]:
    """One pass (or the index's rows of it): the scores (best first), what grouping needs of
    each photo, the failures."""
    got = scored_pass(engine, files, batch_size, progress, index)
    feats = got.features
    with reporting(progress):
        pairs = got.pairing()  # once, for the near-copy flag and for grouping
    items = ranked(engine, got.paths, got.raw, feats if suggest else None, got.qualities())
    shots = Shots(got.paths, pairs.unit, got.hashes, got.colours, got.times, pairs)
    return items, shots, got.problems


def group_decoded(
    engine: Engine,
    paths: list[Path],
    batch: np.ndarray,
    outputs: tuple[np.ndarray, np.ndarray | None],
    times: list[float | None],
    similarity: float,
    problems: list[str],
    qualities: list[Quality] | None = None,
) -> GroupResult:
    """The grouping pass over photos already decoded and scored (the server's uploads):
    `batch` the model's uint8 inputs, `outputs` its (raw, features), `times` capture times,
    `qualities` their measured technical quality (inference/quality.py)."""
    raw, feats = outputs
    items = ranked(engine, paths, raw, None, qualities)
    hashes, colours = fingerprints(batch)
    shots = Shots(paths, unit_rows(feats), hashes, colours, times)
    return grouped(engine, items, shots, similarity, problems)


def check_similarity(similarity: float) -> float:
    if not 0.0 < similarity < 1.0:
        raise OptionError(
            "similarity",
            similarity,
            f"use a cosine similarity between 0 and 1 (default {SIMILARITY}; higher: stricter groups).",
        )
    return float(similarity)


def group_images(
    paths: Sequence[str | Path],
    *,
    similarity: float = SIMILARITY,
    model: str | Path | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    suggest: bool = True,
    stats: Path | None = None,
    index: str | Path | bool | None = None,
    with_shots: ShotsHook | None = None,
) -> GroupResult:
    """Score every image under `paths` and put near-duplicates (the same moment) in groups,
    each best first; unreadable files are reported. `index`: the photo index (None: the default
    one under the cache folder; a path; False: none). `with_shots` sees the ranking pass before
    the grouping (inference/history.py: the similar past posts) and returns more problems."""
    check_similarity(similarity)
    files, problems = files_to_score(paths, recursive, batch_size)
    engine = open_engine(model, device, stats=stats)
    store = open_index(index)
    try:
        items, shots, bad = _score_shots(engine, files, batch_size, suggest, progress, store)
    finally:
        if store is not None:
            store.close()
    if not items:
        raise ImagionError("no image could be scored: " + joined(bad[:3]))
    if with_shots is not None:
        bad += with_shots(engine, items, shots, progress)
    with reporting(progress):
        return grouped(engine, items, shots, similarity, problems + bad)


def grouped(
    engine: Engine, items: list[Ranked], shots: Shots, similarity: float, problems: list[str]
) -> GroupResult:
    """The GroupResult of scored `items` (best first) and their `shots`."""
    row = {str(p): k for k, p in enumerate(shots.paths)}
    order = [row[str(r.path)] for r in items]
    at = {k: pos for pos, k in enumerate(order)}
    rows = [[at[i] for i in g] for g in cluster(order, shots, similarity)]
    cal = engine.calibration
    return GroupResult(
        make_groups(engine, items, rows),
        problems,
        model=str(engine.path),
        arch=engine.arch,
        uncalibrated=cal.missing,
        similarity=similarity,
        by_features=shots.features is not None,
        calibrated_on=cal.pair_source,
    )
