"""Clipped highlights told apart beside a darker copy of the same picture, block by block.

A photo alone cannot tell its clipped highlights apart: a white backdrop or a screenshot of a web
page is 40% pure white on purpose, while a copy of a dark photo brightened 1.7× may clip 3% of
its pixels (docs/quality.md). Beside a darker copy of the same picture it can: where the brighter
one is flat white, the darker one still holds detail (a face, a shirt's folds, clouds). Summary
numbers cannot make this comparison — soft highlights at 250–252 of 255 count as clipped, and a
dimmed copy that was re-saved, sharpened or vignetted loses its own flat top — so each photo
keeps a small thumbnail of blocks, taken in the ranking pass from the decoded model input, and
two photos' thumbnails are compared.

The thumbnail: THUMB×THUMB blocks of the input's interior (where its Laplacian is defined), each
four bytes — the mean brightness (0–255), the detail (the root mean square of the Laplacian,
×DETAIL_SCALE, at most 255), the share of pixels at ≥ CLIP of 255 (×255), and two bits (1: a
colour channel reaches CLIP somewhere in the block, 2: the brightness does). 1 KiB a photo.

The comparison (`lost_share`), measured on 420 real photos (ig-celeb12 and instagram-2017) and
16 kinds of copies of each (docs/quality.md):
1. the brighter photo's brightness is fitted as a smooth gain (a quadratic over the picture:
   exposure and a vignette) times the darker one's, on the blocks where neither reaches CLIP in
   any channel (too few: in its brightness), and both are above the deep shadows; the fit is
   trimmed twice of blocks off by more than twice the median;
2. the two are the same picture, aligned, when the median block is off by at most ALIGNED of its
   brightness: a crop, a shift, a rotation or another picture is not compared;
3. the brighter one is brighter: the median gain at least BRIGHTER;
4. a block lost its highlights when at least LOST_CLIPPED of it is clipped in the brighter photo,
   the darker one's detail there, times the gain, is at least DETAIL, and the brighter one keeps
   at most KEPT of that detail (a dimmed copy keeps all of it, a sharpened one up to 2.5×).
The share of the picture's blocks that lost their highlights is returned; `flagged` past
LOST_BLOCKS of them.
"""

from __future__ import annotations

import numpy as np

THUMB = 16  # blocks per side
PLANES = 4  # mean brightness, detail, clipped share, bits
THUMB_BYTES = PLANES * THUMB * THUMB
DETAIL_SCALE = 4.0  # the detail plane holds the Laplacian's RMS in quarters of a level
CLIP = 250  # of 255: clipped
UNKNOWN = 255  # a bits plane all this: no thumbnail (the input was too small, or none was kept)

SHADOWS = 10  # blocks this dark or darker are not fitted (their noise is most of them)
MIN_FIT = 12  # blocks the gain is fitted on, at least
ALIGNED = 0.03  # the median block's relative error of the fit, at most
EDGES_ALIGNED = 0.06  # …and the textured blocks' 75th percentile, at most (a crop moves edges)
BRIGHTER = 1.03  # the median gain, at least
LOST_CLIPPED = 0.7  # share of a block clipped in the brighter photo
DETAIL = 8.0  # the darker photo's detail in the block, times the gain, at least (levels)
PREDICTED = 240  # the darker photo's block, times the gain, at least this bright: it would clip
KEPT = 0.4  # the brighter photo's detail in the block, at most this share of that
LOST_BLOCKS = 2  # blocks that lost their highlights: "highlights clipped" (0.8% of the picture)


def thumbnails(batch: np.ndarray, grey: np.ndarray, lap2: np.ndarray) -> np.ndarray:
    """The thumbnails (N×THUMB_BYTES uint8) of a uint8 batch N×S×S×3, given its brightness
    (N×S×S float32, 0–255) and its squared Laplacian on the interior (N×(S−2)×(S−2), as the
    sharpness measure computes it: reused, not computed again)."""
    n, h, w = grey.shape
    b = (min(h, w) - 2) // THUMB  # the block's side in pixels
    out = np.zeros((n, PLANES, THUMB, THUMB), np.uint8)
    if b < 2 or n == 0:
        out[:, 3] = UNKNOWN
        return out.reshape(n, THUMB_BYTES)
    side = b * THUMB
    inner = (slice(None), slice(1, side + 1), slice(1, side + 1))  # the Laplacian's [:side]
    area = float(b * b)

    def sums(a: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Each block's sum: whole rows added first."""
        a = a.reshape(n, THUMB, b, side).sum(axis=2, dtype=dtype)
        return a.reshape(n, THUMB, THUMB, b).sum(axis=3, dtype=dtype)

    bright = grey[inner]
    out[:, 0] = np.rint(sums(bright) / area)
    detail = np.sqrt(sums(lap2[:, :side, :side]) / area) * DETAIL_SCALE
    out[:, 1] = np.minimum(np.rint(detail), 255)
    counts = sums((bright >= CLIP).view(np.uint8), np.uint16)
    out[:, 2] = np.rint(counts / area * 255)
    channels = (batch[inner] >= CLIP).view(np.uint8)  # each block's channels at CLIP, counted
    channels = channels.reshape(n, THUMB, b, side * 3).sum(axis=2, dtype=np.uint16)
    colour = channels.reshape(n, THUMB, THUMB, b * 3).sum(axis=3, dtype=np.uint16) > 0
    out[:, 3] = colour.astype(np.uint8) | ((counts > 0).astype(np.uint8) << 1)
    return out.reshape(n, THUMB_BYTES)


def known(thumbs: np.ndarray) -> np.ndarray:
    """Which rows of N×THUMB_BYTES hold a thumbnail."""
    if len(thumbs) == 0:
        return np.zeros(0, bool)
    bits = np.asarray(thumbs).reshape(len(thumbs), PLANES, -1)[:, 3]
    return np.asarray((bits <= 3).all(axis=1))


def no_thumbnails(n: int) -> np.ndarray:
    """N rows that hold no thumbnail."""
    out = np.zeros((n, PLANES, THUMB * THUMB), np.uint8)
    out[:, 3] = UNKNOWN
    return out.reshape(n, THUMB_BYTES)


_Y, _X = np.mgrid[0:THUMB, 0:THUMB] / (THUMB - 1) - 0.5
_BASIS = np.stack([np.ones_like(_X), _X, _Y, _X * _X, _Y * _Y, _X * _Y], axis=-1).reshape(-1, 6)


def lost_share(brighter: np.ndarray, darker: np.ndarray) -> float:
    """The share of the picture's blocks where `brighter` lost highlights `darker` keeps (module
    docstring); 0 when the two are not the same picture, aligned, or not brighter and darker."""
    a = np.asarray(brighter, np.float64).reshape(PLANES, -1)
    d = np.asarray(darker, np.float64).reshape(PLANES, -1)
    if (a[3] > 3).any() or (d[3] > 3).any():
        return 0.0
    lit = (a[0] > SHADOWS) & (d[0] > SHADOWS)
    fit = lit & (a[3] % 2 == 0) & (d[3] % 2 == 0)  # no channel at CLIP
    if fit.sum() < MIN_FIT:
        fit = lit & (a[3] < 2) & (d[3] < 2)  # the brightness below CLIP
        if fit.sum() < MIN_FIT:
            return 0.0
    gain, error = _gain(a[0], d[0], fit)
    if gain is None or _median(error[fit]) > ALIGNED or _median(gain[fit]) < BRIGHTER:
        return 0.0
    detail_a, detail_d = a[1] / DETAIL_SCALE, d[1] / DETAIL_SCALE * gain
    textured = fit & (detail_d >= DETAIL / 2)
    if textured.sum() >= MIN_FIT // 2:
        if _quantile(error[textured], 0.75) > EDGES_ALIGNED:  # a crop moves the edges
            return 0.0
        # a blur or a sharpening: the detail kept is measured against the pair's own ratio
        detail_d = detail_d * float(_median(detail_a[textured] / detail_d[textured]))
    lost = (a[2] / 255 >= LOST_CLIPPED) & (d[0] * gain >= PREDICTED)
    lost &= (detail_d >= DETAIL) & (detail_a <= KEPT * detail_d)
    return float(lost.mean())


def _gain(a: np.ndarray, d: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The gain field g (per block) with a ≈ g·d, fitted on `fit` and trimmed twice of blocks off
    by more than twice the median (at least 2%), and each block's relative error."""
    use = fit
    gain, error = None, np.zeros_like(a)
    for _ in range(3):
        x = _BASIS[use] * d[use, None]
        try:  # the normal equations: 6 unknowns, a tenth of lstsq's time
            coef = np.linalg.solve(x.T @ x, x.T @ a[use])
        except np.linalg.LinAlgError:
            return None, error
        gain = _BASIS @ coef
        error = np.abs(a - gain * d) / np.maximum(a, 1.0)
        use = fit & (error <= max(2 * float(_median(error[fit])), 0.02))
        if use.sum() < MIN_FIT:
            break
    return gain, error


def _quantile(x: np.ndarray, q: float) -> float:
    """np.quantile's (linear) of a short 1-D array, without its overhead (most of its time here)."""
    v = np.sort(x)
    if not len(v):
        return float("nan")
    at = q * (len(v) - 1)
    low = int(at)
    high = min(low + 1, len(v) - 1)
    return float(v[low] + (v[high] - v[low]) * (at - low))


def _median(x: np.ndarray) -> float:
    return _quantile(x, 0.5)


def flagged(brighter: np.ndarray, darker: np.ndarray) -> float | None:
    """`lost_share` when it reaches LOST_BLOCKS blocks, else None."""
    share = lost_share(brighter, darker)
    return share if share * THUMB * THUMB >= LOST_BLOCKS - 1e-9 else None
