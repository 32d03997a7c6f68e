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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagion.errors import ImagionError, OptionError
from imagion.inference.engine import Engine, open_engine
from imagion.inference.neighbours import candidates, report, reporting
from imagion.inference.photo_index import (  # noqa: F401 (fingerprints, capture_time: re-exported)
    PhotoIndex,
    capture_time,
    fingerprints,
    open_index,
    scored_pass,
)
from imagion.inference.rank import ABOUT_EVEN, Ranked, RankRow, files_to_score, ranked
from imagion.problems import joined
from imagion.progress import Progress

# Measured on generated bursts with the bundled model (docs/pick.md, bench/group_quality.py): on
# 100 sources × 5 variants, 0.84 keeps 498 of 500 variants with their source and merges no two
# sources; 0.82 merges 2 pairs of sources, 0.80 six; above 0.86 recall drops.
SIMILARITY = 0.84
BURST_SECONDS = 2.0  # shots this close in time (EXIF) are a burst…
BURST_EASING = 0.05  # …and need this much less similarity
HASH_BITS = 3  # a re-saved copy: at most this many of the 64 hash bits differ…
HASH_COLOUR = 8.0  # …and no channel's mean moves by more than this (of 255)


@dataclass
class Shots:
    """What the ranking pass gives for grouping, row k for `paths[k]`."""

    paths: list[Path]
    features: np.ndarray | None  # N×F, L2-normalised (None: the model has no pooled features)
    hashes: np.ndarray  # N uint64 difference hashes of the model input
    colours: np.ndarray  # N×3 mean colour of the model input
    times: list[float | None] = field(default_factory=list)  # EXIF capture time (s), if any


def cluster(order: Sequence[int], shots: Shots, similarity: float = SIMILARITY) -> list[list[int]]:
    """Groups of row indices, each best first, in the order of their best (`order`: the rows,
    best first). Each photo is compared only with the groups of its candidate neighbours
    (imagion.inference.neighbours), which hold every group the rule could put it in."""
    rows = np.asarray(order, np.int64)
    n = len(rows)
    feats = shots.features
    times = [shots.times[i] for i in rows] if shots.times else [None] * n
    cand = candidates(
        feats,
        rows,
        shots.hashes[rows],
        np.asarray(shots.colours)[rows],
        times,
        burst_seconds=BURST_SECONDS,
        hash_bits=HASH_BITS,
        hash_colour=HASH_COLOUR,
    )
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
        if self.p_beats_next is None:
            why = "" if calibrated else " (no held-out calibration)"
            return f"{head}; how likely it beats the next best is unknown for this model{why}"
        if self.even > 1:
            which = f"all {n}" if self.even == n else f"the top {self.even}"
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
        shots = [items[i] for i in members]
        g = Group(k + 1, shots)
        if len(shots) > 1:
            g.p_beats_next = cal.win_probability(shots[0].raw, shots[1].raw)
            if g.p_beats_next is not None:
                ps = (cal.win_probability(shots[0].raw, s.raw) or 0.5 for s in shots[1:])
                g.even = 1 + sum(p < ABOUT_EVEN for p in ps)
        groups.append(g)
    return groups


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
    items = ranked(engine, got.paths, got.raw, feats if suggest else None)
    if feats is not None:
        feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    shots = Shots(got.paths, feats, got.hashes, got.colours, got.times)
    return items, shots, got.problems


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
) -> GroupResult:
    """Score every image under `paths` and put near-duplicates (the same moment) in groups,
    each best first; unreadable files are reported. `index`: the photo index (None: the default
    one under the cache folder; a path; False: none)."""
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
