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

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from imagion.errors import ImagionError, OptionError
from imagion.inference.decode import run_files
from imagion.inference.engine import Engine, open_engine
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


# (engine, items best first, their shots, progress) → problems met (e.g. past posts unreadable)
ShotsHook = Callable[[Engine, list[Ranked], Shots, Progress | None], list[str]]


def fingerprints(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Difference hashes (9×8 grey cells, one bit per horizontal step) and mean colours of a
    uint8 batch N×S×S×3, from every 5th pixel of a 224-px input (each cell still averages
    dozens), every pixel of a small one."""
    step = max(1, min(batch.shape[1:3]) // 40)
    small = batch[:, ::step, ::step].astype(np.float32)
    n, h, w, _ = small.shape
    grey = small @ np.array([0.299, 0.587, 0.114], np.float32)
    rows, cols = np.linspace(0, h, 9).astype(int), np.linspace(0, w, 10).astype(int)
    cells = np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=1), cols[:-1], axis=2)
    cells /= np.maximum(np.outer(np.diff(rows), np.diff(cols)), 1)
    bits = (cells[:, :, 1:] > cells[:, :, :-1]).reshape(n, 64).astype(np.uint64)
    hashes = (bits << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return hashes, small.reshape(n, -1, 3).mean(axis=1)


def capture_time(path: Path | IO[bytes]) -> float | None:
    """EXIF DateTimeOriginal (with its sub-seconds) as seconds, from the header only."""
    try:
        with Image.open(path) as im:
            exif = im.getexif().get_ifd(0x8769)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    when, sub = exif.get(0x9003), exif.get(0x9291)
    if not isinstance(when, str):
        return None
    try:
        t = dt.datetime.strptime(when.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    frac = float(f"0.{sub.strip()}") if isinstance(sub, str) and sub.strip().isdigit() else 0.0
    return t.replace(tzinfo=dt.UTC).timestamp() + frac


_POP16 = np.array([bin(k).count("1") for k in range(1 << 16)], np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    return _POP16[x.view(np.uint16).reshape(len(x), 4)].sum(axis=1)


def cluster(order: Sequence[int], shots: Shots, similarity: float = SIMILARITY) -> list[list[int]]:
    """Groups of row indices, each best first, in the order of their best (`order`: the rows,
    best first)."""
    feats = shots.features
    n = len(shots.paths)
    sums = np.zeros((n, feats.shape[1]), np.float32) if feats is not None else None
    sizes = np.zeros(n, np.float32)
    groups: list[list[int]] = []
    span: list[tuple[float, float] | None] = []  # each group's capture times, first to last
    of_row = np.full(n, -1)
    for i in order:
        g = _resaved(i, shots, of_row)
        if g is None and sums is not None and groups:
            sim = sums[: len(groups)] @ feats[i] / sizes[: len(groups)]  # type: ignore[index]
            need = np.full(len(groups), similarity)
            t = shots.times[i] if shots.times else None
            if t is not None:
                near = [
                    s is not None and s[0] - BURST_SECONDS <= t <= s[1] + BURST_SECONDS
                    for s in span
                ]
                need[np.array(near)] -= BURST_EASING
            best = int(np.argmax(sim - need))
            g = best if sim[best] >= need[best] else None
        if g is None:
            g = len(groups)
            groups.append([])
            span.append(None)
        groups[g].append(i)
        sizes[g] += 1
        of_row[i] = g
        if sums is not None:
            sums[g] += feats[i]  # type: ignore[index]
        t = shots.times[i] if shots.times else None
        if t is not None:
            s = span[g]
            span[g] = (t, t) if s is None else (min(s[0], t), max(s[1], t))
    return groups


def _resaved(i: int, shots: Shots, of_row: np.ndarray) -> int | None:
    """The group of an earlier row this one is a re-saved copy of, if any."""
    seen = np.flatnonzero(of_row >= 0)
    if not len(seen):
        return None
    close = _popcount(shots.hashes[seen] ^ shots.hashes[i]) <= HASH_BITS
    close &= np.abs(shots.colours[seen] - shots.colours[i]).max(axis=1) <= HASH_COLOUR
    hit = seen[close]
    return int(of_row[hit[0]]) if len(hit) else None


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
) -> tuple[list[Ranked], Shots, list[str]]:
    """One pass: the scores (best first), what grouping needs of each photo, the failures."""
    hashes: list[np.ndarray] = []
    colours: list[np.ndarray] = []

    def forward(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        h, c = fingerprints(batch)
        hashes.append(h)
        colours.append(c)
        return engine.forward(batch, True)

    done, raw, feats, bad = run_files(
        files, engine.preprocess.size, forward, batch_size or engine.batch_size, progress
    )
    items = ranked(engine, done, raw, feats if suggest else None)
    if feats is not None:
        feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    shots = Shots(
        done,
        feats,
        np.concatenate(hashes) if hashes else np.zeros(0, np.uint64),
        np.concatenate(colours) if colours else np.zeros((0, 3)),
        [capture_time(p) for p in done],
    )
    return items, shots, bad


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
    with_shots: ShotsHook | None = None,
) -> GroupResult:
    """Score every image under `paths` and put near-duplicates (the same moment) in groups,
    each best first; unreadable files are reported. `with_shots` sees the ranking pass before
    the grouping (inference/history.py: the similar past posts) and returns more problems."""
    check_similarity(similarity)
    files, problems = files_to_score(paths, recursive, batch_size)
    engine = open_engine(model, device, stats=stats)
    items, shots, bad = _score_shots(engine, files, batch_size, suggest, progress)
    if not items:
        raise ImagionError("no image could be scored: " + joined(bad[:3]))
    if with_shots is not None:
        bad += with_shots(engine, items, shots, progress)
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
