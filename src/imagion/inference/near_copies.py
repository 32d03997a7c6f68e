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

import numpy as np

from imagion.inference.neighbours import exposure_variants, hues, popcount
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

# "highlights clipped" beside a near-copy: at least MORE_CLIPPED more of the pixels clipped than a
# near-copy whose mean brightness is at least BRIGHTER lower and that is not "too dark" itself (a
# photo darkened to 40% keeps nothing to compare). A near-copy here is an exposure variant by the
# hash rule above whose features are also at least VARIANT_SIMILARITY alike (the hash rule alone
# pairs different low-detail pictures: a quote on white and a plain product shot). Measured on the
# 20 sets of bench/quality_flags.py and 1,000 instagram-2017 posts (docs/quality.md): brightened
# copies clip ≥ 0.031 more than their original where they clip at all (one clips 0.002), are
# ≥ 0.041 brighter and ≥ 0.76 alike but one (0.55, clipped past CLIPPED on its own); blurred,
# re-saved and halved copies differ from their original by ≤ 0.006 in brightness; the different
# posts the hash rule pairs are ≤ 0.53 alike.
MORE_CLIPPED = 0.02
BRIGHTER = 0.02
VARIANT_SIMILARITY = 0.7
BLOCK = 256  # photos compared with every other photo at a time


def more_clipped_pairs(
    clipped: np.ndarray,
    bright: np.ndarray,
    reference: np.ndarray,
    features: np.ndarray | None,
    hashes: np.ndarray,
    colours: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of rows: j a near-copy of i (module comment) that `reference` allows, i
    clipping at least MORE_CLIPPED more and at least BRIGHTER brighter (`clipped`, `bright`:
    each row's measures). Costs what the photos that clip at all take: each is compared with
    every row in blocks, features only for the pairs the hashes let through."""
    hashes = np.asarray(hashes, np.uint64)
    hue = hues(colours)
    unit = None
    if features is not None:
        unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    suspects = np.nonzero(clipped >= MORE_CLIPPED)[0]
    found_i, found_j = [], []
    for s in range(0, len(suspects), BLOCK):
        i = suspects[s : s + BLOCK, None]
        maybe = reference[None, :] & (clipped[i] - clipped[None, :] >= MORE_CLIPPED)
        maybe &= bright[i] - bright[None, :] >= BRIGHTER
        a, b = np.nonzero(maybe)
        a = i[a, 0]
        bits = popcount(hashes[a] ^ hashes[b])
        ok = exposure_variants(hashes[a], bits, hue[a], hue[b], EXPOSURE_BITS, EXPOSURE_CHROMA)
        a, b = a[ok], b[ok]
        if unit is not None:
            alike = np.einsum("ij,ij->i", unit[a], unit[b]) >= VARIANT_SIMILARITY
            a, b = a[alike], b[alike]
        found_i.append(a)
        found_j.append(b)
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_i), np.concatenate(found_j)


def beside_near_copies(
    qualities: list[Quality],
    features: np.ndarray | None,
    hashes: np.ndarray,
    colours: np.ndarray,
) -> list[Quality]:
    """`qualities` (row k of the other arrays for photo k) with "highlights clipped" where a photo
    clips at least MORE_CLIPPED more of its pixels than a near-copy at least BRIGHTER darker that
    is not too dark; `near_copy_clipped` then holds the least such near-copy's share."""
    if len(qualities) < 2:
        return list(qualities)
    clipped = np.array([q.clipped for q in qualities])
    bright = np.array([q.brightness for q in qualities])
    reference = np.array(["too dark" not in q.flags for q in qualities])
    i, j = more_clipped_pairs(clipped, bright, reference, features, hashes, colours)
    out = list(qualities)
    for k in np.unique(i):
        q = qualities[k]
        flags = q.flags if "highlights clipped" in q.flags else _with_clipped(q.flags)
        out[k] = dataclasses.replace(
            q, flags=flags, near_copy_clipped=float(clipped[j[i == k]].min())
        )
    return out


def _with_clipped(flags: list[str]) -> list[str]:
    """`flags` with "highlights clipped" in its place (the order of quality.FLAGS)."""
    have = set(flags) | {"highlights clipped"}
    return [f for f in FLAGS if f in have]
