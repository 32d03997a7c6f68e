"""What makes two photos near-copies of one moment, and the flag only a near-copy can give.

The rule's constants live here (grouping, `imagion.inference.groups`, uses them all), and so does
the one comparison a photo alone cannot make: whether its highlights are clipped. A white
backdrop or a screenshot of a web page is 40% pure white on purpose, while a brightened copy of a
dark photo may clip only 3% of its pixels — no share of clipped pixels tells the two apart
(docs/quality.md). Beside a darker near-copy of the same picture it can be told: the brighter one
lost highlights the darker one keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagion.inference.neighbours import candidates, exposure_variants, hues, popcount
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

# "highlights clipped" beside a near-copy: at least MORE_CLIPPED more of the pixels clipped than
# a near-copy of the same pixel size holds at its own top (clipped, or a white area dimmed: a
# darker copy of a clipped photo keeps no highlights), whose mean brightness is at least BRIGHTER
# lower and that is not "too dark" itself (a photo darkened to 40% keeps nothing to compare). A
# near-copy here is a candidate pair of the grouping (features' nearest neighbours, hash
# quarters) that is an exposure variant by the hash rule above and whose features are at least
# VARIANT_SIMILARITY alike (the hash rule alone pairs different low-detail pictures: a quote on
# white and a plain product shot). The same size leaves out crops: a tighter crop of a photo on a
# white backdrop clips less without keeping anything. Measured on the 20 sets of
# bench/quality_flags.py and 1,000 instagram-2017 posts (docs/quality.md): brightened copies
# clip ≥ 0.031 more than their original where they clip at all (one clips 0.002), are ≥ 0.041
# brighter and ≥ 0.76 alike but one (0.55, clipped past CLIPPED on its own); blurred, re-saved
# and halved copies differ from their original by ≤ 0.006 in brightness; the different posts the
# hash rule pairs are ≤ 0.53 alike.
MORE_CLIPPED = 0.02
BRIGHTER = 0.02
VARIANT_SIMILARITY = 0.7


def beside_near_copies(
    qualities: list[Quality],
    features: np.ndarray | None,
    hashes: np.ndarray,
    colours: np.ndarray,
    paths: Sequence[str | Path] | None = None,
) -> list[Quality]:
    """`qualities` (row k of the other arrays for photo k, `paths[k]` its name) with "highlights
    clipped" where a photo clips at least MORE_CLIPPED more of its pixels than a darker near-copy
    holds at its top (module comment); `near_copy` and `near_copy_clipped` then name that copy
    (the one with the least at its top) and its clipped share. Costs what grouping does (about
    N log N, the grouping's candidate pairs), and nothing when no photo clips MORE_CLIPPED."""
    n = len(qualities)
    clipped = np.array([q.clipped for q in qualities])
    if n < 2 or not (clipped >= MORE_CLIPPED).any():
        return list(qualities)
    top = np.maximum(clipped, [q.at_top for q in qualities])
    bright = np.array([q.brightness for q in qualities])
    size = np.array([(q.width or -1, q.height or -1) for q in qualities])
    reference = np.array(["too dark" not in q.flags for q in qualities]) & (size[:, 0] > 0)
    i, j = _variant_pairs(features, np.asarray(hashes, np.uint64), colours)
    keep = reference[j] & (size[i] == size[j]).all(axis=1)
    keep &= (clipped[i] - top[j] >= MORE_CLIPPED) & (bright[i] - bright[j] >= BRIGHTER)
    i, j = i[keep], j[keep]
    out = list(qualities)
    for k in np.unique(i):
        mine = j[i == k]
        best = int(mine[np.argmin(top[mine])])
        q = qualities[k]
        flags = q.flags if "highlights clipped" in q.flags else _with_clipped(q.flags)
        name = str(paths[best]) if paths is not None else None
        out[k] = dataclasses.replace(
            q, flags=flags, near_copy=name, near_copy_clipped=float(clipped[best])
        )
    return out


def _variant_pairs(
    features: np.ndarray | None, hashes: np.ndarray, colours: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both orders (i, j) of the grouping's candidate pairs that are exposure variants by the hash
    rule and, with `features`, at least VARIANT_SIMILARITY alike."""
    n = len(hashes)
    rows = np.arange(n)
    unit = None
    if features is not None:  # unit rows: the nearest neighbours by cosine, as grouping's
        unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    cand = candidates(
        unit,
        rows,
        hashes,
        np.asarray(colours, np.float64),
        [None] * n,
        burst_seconds=BURST_SECONDS,
        hash_bits=HASH_BITS,
        hash_colour=HASH_COLOUR,
    )
    a = np.repeat(rows, np.diff(cand.start))
    b = cand.earlier
    hue = hues(colours)
    bits = popcount(hashes[a] ^ hashes[b])
    ok = exposure_variants(hashes[a], bits, hue[a], hue[b], EXPOSURE_BITS, EXPOSURE_CHROMA)
    a, b = a[ok], b[ok]
    if unit is not None:
        alike = np.einsum("ij,ij->i", unit[a], unit[b]) >= VARIANT_SIMILARITY
        a, b = a[alike], b[alike]
    return np.concatenate([a, b]), np.concatenate([b, a])


def _with_clipped(flags: list[str]) -> list[str]:
    """`flags` with "highlights clipped" in its place (the order of quality.FLAGS)."""
    have = set(flags) | {"highlights clipped"}
    return [f for f in FLAGS if f in have]
