"""What makes two photos near-copies of one moment, and the flag only a near-copy can give.

The rule's constants live here (grouping, `imagion.inference.groups`, uses them all), and so does
the one flag a photo alone cannot get: "highlights clipped" where it clips less than a white
backdrop does on purpose, told apart beside a darker copy of the same picture that keeps the
highlights it lost (inference/highlights.py compares the two).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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
from imagion.inference.neighbours import candidates
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


def beside_near_copies(
    qualities: list[Quality],
    thumbs: np.ndarray | None,
    features: np.ndarray | None,
    hashes: np.ndarray,
    colours: np.ndarray,
    paths: Sequence[str | Path] | None = None,
) -> list[Quality]:
    """`qualities` (row k of the other arrays for photo k, `paths[k]` its name) with "highlights
    clipped" where a darker near-copy keeps highlights the photo lost (inference/highlights.py);
    `near_copy` then names that copy (the one keeping the most) and `lost_highlights` says how
    much of the picture it keeps. The pairs compared are grouping's candidates (nearest by
    features, equal hash quarters: about N log N) that its rule calls re-saved copies or exposure
    variants, where the brighter photo has LOST_BLOCKS mostly clipped blocks: no photo clipped,
    no comparison."""
    n = len(qualities)
    if n < 2 or thumbs is None or len(thumbs) != n:
        return list(qualities)
    thumbs = np.asarray(thumbs)
    planes = thumbs.reshape(n, PLANES, -1).astype(np.float64)
    clipped_blocks = (planes[:, 2] / 255 >= LOST_CLIPPED).sum(axis=1)
    may_lose = known(thumbs) & (clipped_blocks >= LOST_BLOCKS)
    if not may_lose.any():
        return list(qualities)
    brightness = planes[:, 0].mean(axis=1)
    i, j = _pairs(features, np.asarray(hashes, np.uint64), np.asarray(colours, np.float64))
    # the brighter one is brighter overall by half the margin at least (clipping lowers its mean)
    keep = may_lose[i] & known(thumbs)[j] & (brightness[i] >= brightness[j] * BRIGHTER_OVERALL)
    i, j = i[keep], j[keep]
    shares = lost_shares(thumbs[i], thumbs[j])
    hit = reaches(shares)
    best: dict[int, tuple[float, int]] = {}
    for a, b, share in zip(i[hit].tolist(), j[hit].tolist(), shares[hit].tolist(), strict=True):
        if share > best.get(a, (0.0, -1))[0]:  # the copy keeping the most
            best[a] = (share, b)
    out = list(qualities)
    for k, (share, b) in best.items():
        q = qualities[k]
        flags = q.flags if "highlights clipped" in q.flags else _with_clipped(q.flags)
        name = str(paths[b]) if paths is not None else None
        out[k] = dataclasses.replace(q, flags=flags, near_copy=name, lost_highlights=share)
    return out


def _pairs(
    features: np.ndarray | None, hashes: np.ndarray, colours: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both orders (i, j) of the grouping's candidate pairs that its rule calls re-saved copies
    or exposure variants."""
    n = len(hashes)
    rows = np.arange(n)
    unit = None
    if features is not None:  # unit rows: the nearest neighbours by cosine, as grouping's
        unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    cand = candidates(
        unit,
        rows,
        hashes,
        colours,
        [None] * n,
        burst_seconds=BURST_SECONDS,
        hash_bits=HASH_BITS,
        hash_colour=HASH_COLOUR,
        exposure_bits=EXPOSURE_BITS,
        exposure_chroma=EXPOSURE_CHROMA,
    )
    a = np.repeat(rows, np.diff(cand.start))[cand.resaved]
    b = cand.earlier[cand.resaved]
    return np.concatenate([a, b]), np.concatenate([b, a])


def _with_clipped(flags: list[str]) -> list[str]:
    """`flags` with "highlights clipped" in its place (the order of quality.FLAGS)."""
    have = set(flags) | {"highlights clipped"}
    return [f for f in FLAGS if f in have]
