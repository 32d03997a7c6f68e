"""What makes two photos near-copies of one moment: the rule's constants, in one place (grouping,
`imagion.inference.groups`, and the history's "already posted", `imagion.inference.history`, use
them)."""

from __future__ import annotations

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
