"""What makes two photos near-copies of one moment, and the flag only a near-copy can give.

The rule's constants live here (grouping, `imagion.inference.groups`, uses them all), and so does
the one flag a photo alone cannot get: "highlights clipped" where it clips less than a white
backdrop does on purpose, told apart beside a darker copy of the same picture that keeps the
highlights it lost (inference/highlights.py compares the two).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagion.inference.highlights import (
    BRIGHTER,
    LOST_BLOCKS,
    LOST_CLIPPED,
    PLANES,
    known,
    lost_shares,
    reaches,
)
from imagion.inference.neighbours import Candidates, candidates
from imagion.inference.quality import FLAGS, Quality

# Measured on generated bursts with the bundled model (docs/pick.md, bench/group_quality.py): on
# 100 sources × 5 variants, 0.84 keeps 498 of 500 variants with their source and merges no two
# sources; 0.82 merges 2 pairs of sources, 0.80 six; above 0.86 recall drops.
SIMILARITY = 0.84
BURST_SECONDS = 2.0  # shots this close in time (EXIF) are a burst…
BURST_EASING = 0.05  # …and need this much less similarity
HASH_BITS = 3  # a re-saved copy: at most this many of the 64 hash bits differ…
HASH_COLOUR = 8.0  # …and no channel's mean moves by more than this (of 255)
# An exposure variant (darkened to 40%, brightened 1.7× with clipped highlights) of a member keeps
# most of its hash and its hue: at most EXPOSURE_BITS differ and the mean colour's share of each
# channel moves by at most EXPOSURE_CHROMA. Measured on the 120 photos of ig-celeb12 (docs/
# quality.md): such copies differ by ≤ 5 bits (40%) and ≤ 13 bits, median 2.5 (1.7×), chroma ≤ 0.064;
# of the 7,140 pairs of different photos one is within 10 bits (a repost of the same picture).
EXPOSURE_BITS = 12
EXPOSURE_CHROMA = 0.07
BRIGHTER_OVERALL = 1 + (BRIGHTER - 1) / 2  # a pair is compared only this much brighter overall


def unit_rows(feats: np.ndarray | None) -> np.ndarray | None:
    """Features scaled to unit length (cosine similarity is then a dot product)."""
    if feats is None:
        return None
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def best_first(raw: np.ndarray, paths: Sequence[str | Path]) -> np.ndarray:
    """The rows in grouping's order: best first by the likes model, as `rank` orders them."""
    keys = [(-float(r), str(p)) for r, p in zip(raw, paths, strict=True)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), np.int64)


def candidate_pairs(
    unit: np.ndarray | None,
    rows: np.ndarray,
    hashes: np.ndarray,
    colours: np.ndarray,
    times: Sequence[float | None] | None,
) -> Candidates:
    """Grouping's candidate pairs of `rows` in that order (`unit`, `hashes`, `colours`, `times`
    indexed by row; neighbours.candidates), by this module's rule."""
    rows = np.asarray(rows, np.int64)
    return candidates(
        unit,
        rows,
        np.asarray(hashes, np.uint64)[rows],
        np.asarray(colours, np.float64)[rows],
        [times[i] for i in rows] if times else [None] * len(rows),
        burst_seconds=BURST_SECONDS,
        hash_bits=HASH_BITS,
        hash_colour=HASH_COLOUR,
        exposure_bits=EXPOSURE_BITS,
        exposure_chroma=EXPOSURE_CHROMA,
    )


@dataclass
class Pairing:
    """A set of photos' candidate pairs in grouping's order, found once for both the near-copy
    flag and grouping (at 100,000 photos the search is most of grouping's time)."""

    order: np.ndarray  # the rows, best first
    unit: np.ndarray | None  # N×F features of unit length (None: the model has none)
    found: Candidates  # position p is row order[p]


def pairing(
    features: np.ndarray | None,
    raw: np.ndarray,
    paths: Sequence[str | Path],
    hashes: np.ndarray,
    colours: np.ndarray,
    times: Sequence[float | None] | None,
) -> Pairing:
    """The Pairing of photos (row k of each argument for photo k)."""
    unit, order = unit_rows(features), best_first(raw, paths)
    return Pairing(order, unit, candidate_pairs(unit, order, hashes, colours, times))


def beside_near_copies(
    qualities: list[Quality],
    thumbs: np.ndarray | None,
    pairs: Callable[[], Pairing],
    paths: Sequence[str | Path] | None = None,
) -> list[Quality]:
    """`qualities` (row k for photo k, `thumbs[k]` its block thumbnail, `paths[k]` its name) with
    "highlights clipped" where a darker near-copy keeps highlights the photo lost (inference/
    highlights.py); `near_copy` then names that copy (the one keeping the most) and
    `lost_highlights` says how much of the picture it keeps. The pairs compared are grouping's
    candidates (`pairs()`, asked for only when needed) that its rule calls re-saved copies or
    exposure variants, where the brighter photo has LOST_BLOCKS mostly clipped blocks and is
    brighter overall by BRIGHTER_OVERALL: no photo clipped, no comparison."""
    n = len(qualities)
    if n < 2 or thumbs is None or len(thumbs) != n:
        return list(qualities)
    thumbs = np.asarray(thumbs, np.uint8)
    planes = thumbs.reshape(n, PLANES, -1)  # uint8 views: no copy of a library's thumbnails
    have = known(thumbs)
    may_lose = have & ((planes[:, 2] >= LOST_CLIPPED * 255).sum(axis=1) >= LOST_BLOCKS)
    if not may_lose.any():
        return list(qualities)
    brightness = planes[:, 0].mean(axis=1)
    found = pairs()
    a = found.order[np.repeat(np.arange(n), np.diff(found.found.start))[found.found.resaved]]
    b = found.order[found.found.earlier[found.found.resaved]]
    i, j = np.concatenate([a, b]), np.concatenate([b, a])  # both ways: either may be brighter
    keep = may_lose[i] & have[j] & (brightness[i] >= brightness[j] * BRIGHTER_OVERALL)
    i, j = i[keep], j[keep]
    shares = lost_shares(thumbs[i], thumbs[j])
    hit = reaches(shares)
    best: dict[int, tuple[float, int]] = {}
    for k, other, share in zip(i[hit].tolist(), j[hit].tolist(), shares[hit].tolist(), strict=True):
        if share > best.get(k, (0.0, -1))[0]:  # the copy keeping the most
            best[k] = (share, other)
    out = list(qualities)
    for k, (share, other) in best.items():
        q = qualities[k]
        flags = q.flags if "highlights clipped" in q.flags else _with_clipped(q.flags)
        name = str(paths[other]) if paths is not None else None
        out[k] = dataclasses.replace(q, flags=flags, near_copy=name, lost_highlights=share)
    return out


def _with_clipped(flags: list[str]) -> list[str]:
    """`flags` with "highlights clipped" in its place (the order of quality.FLAGS)."""
    have = set(flags) | {"highlights clipped"}
    return [f for f in FLAGS if f in have]
