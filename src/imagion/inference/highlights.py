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
colour channel reaches CLIP somewhere in the block, 2: the brightness does), and the least
brightness in the block. 1.25 KiB a photo.

The comparison (`lost_share`), measured on 420 real photos (ig-celeb12 and instagram-2017) and
16 kinds of copies of each (docs/quality.md):
1. the brighter photo's brightness is fitted as a smooth gain (a quadratic over the picture:
   exposure and a vignette) times the darker one's, on the blocks where neither reaches CLIP in
   any channel (too few: in its brightness), and both are above the deep shadows; the fit is
   trimmed twice of blocks off by more than twice the median, and a small ridge on the field's
   shape keeps it level where the fitted blocks leave the shape free (all in one row, say);
2. the two are the same picture, aligned, when the median block is off by at most ALIGNED of its
   brightness and the textured blocks' 75th percentile by at most EDGES_ALIGNED: a crop, a shift,
   a rotation or another picture is not compared;
3. the brighter one is brighter: the median gain at least BRIGHTER;
4. a block lost its highlights when at least LOST_CLIPPED of it is clipped in the brighter photo,
   the darker block times the gain would clip (at least PREDICTED), the darker one's detail there,
   times the gain, is at least DETAIL, and the brighter one keeps at most KEPT of that detail —
   the darker one's detail scaled down to the pair's own ratio of detail on the textured blocks
   neither clips where it is sharper (a sharpened copy), never up (a blurred or smaller copy is no
   reference for more detail), and its noise floor taken off (the detail of its smoothest
   NOISE_FLOOR of blocks: film grain or noise added to the darker copy is no detail kept); and
   the darker block keeps them — it clips at most KEEPS_CLIPPED of itself and its least bright
   pixel times the gain is at least WOULD_CLIP (a border, a line or a watermark painted on the
   darker copy, or an edge a zoom or a shift moved, is not the same picture there).
The share of the picture's blocks that lost their highlights is returned; `flagged` (and
`reaches`) from LOST_BLOCKS of them on: "highlights clipped".
"""

from __future__ import annotations

import numpy as np

THUMB = 16  # blocks per side
PLANES = 5  # mean brightness, detail, clipped share, bits, least brightness
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
KEEPS_CLIPPED = 0.1  # the darker photo's block clips at most this share itself…
WOULD_CLIP = 245  # …and its least bright pixel, times the gain, is at least this bright
NOISE_FLOOR = 0.05  # the darker photo's noise: the detail of its smoothest 5% of blocks
KEPT = 0.4  # the brighter photo's detail in the block, at most this share of that
# blocks that lost their highlights: "highlights clipped" (1.2% of the picture; at 2, a copy shifted
# 10 px moved an edge into two)
LOST_BLOCKS = 3


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
    least = bright.reshape(n, THUMB, b, side).min(axis=2)
    out[:, 4] = np.rint(least.reshape(n, THUMB, THUMB, b).min(axis=3))
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
_SHAPE = np.arange(1, 6)  # the basis' terms past the constant: the field's shape
RIDGE = 1e-3  # their ridge, a share of the constant term's weight
_BASIS = np.stack([np.ones_like(_X), _X, _Y, _X * _X, _Y * _Y, _X * _Y], axis=-1).reshape(-1, 6)
_OUTER = (_BASIS[:, :, None] * _BASIS[:, None, :]).reshape(-1, 36)  # each block's B·Bᵀ


def lost_share(brighter: np.ndarray, darker: np.ndarray) -> float:
    """The share of the picture's blocks where `brighter` lost highlights `darker` keeps (module
    docstring); 0 when the two are not the same picture, aligned, or not brighter and darker."""
    return float(lost_shares(np.asarray(brighter)[None], np.asarray(darker)[None])[0])


PAIRS_AT_ONCE = 2048  # pairs compared in one go (their arrays: about 12 KiB a pair)


def lost_shares(brighter: np.ndarray, darker: np.ndarray) -> np.ndarray:
    """`lost_share` of each pair of rows of two P×THUMB_BYTES arrays, PAIRS_AT_ONCE at a time."""
    parts = [
        _lost_shares(brighter[s : s + PAIRS_AT_ONCE], darker[s : s + PAIRS_AT_ONCE])
        for s in range(0, len(brighter), PAIRS_AT_ONCE)
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def _lost_shares(brighter: np.ndarray, darker: np.ndarray) -> np.ndarray:
    n = len(brighter)
    a = np.asarray(brighter, np.float64).reshape(n, PLANES, -1)
    d = np.asarray(darker, np.float64).reshape(n, PLANES, -1)
    ok = known(brighter) & known(darker)
    lit = (a[:, 0] > SHADOWS) & (d[:, 0] > SHADOWS)
    fit = lit & (a[:, 3] % 2 == 0) & (d[:, 3] % 2 == 0)  # no channel at CLIP
    few = fit.sum(axis=1) < MIN_FIT
    fit[few] = (lit & (a[:, 3] < 2) & (d[:, 3] < 2))[few]  # too few: the brightness below CLIP
    ok &= fit.sum(axis=1) >= MIN_FIT
    gain, error = _gains(a[:, 0], d[:, 0], fit, ok)
    ok &= _quantiles(error, fit, 0.5) <= ALIGNED
    ok &= _quantiles(gain, fit, 0.5) >= BRIGHTER
    detail_a, detail_d = a[:, 1] / DETAIL_SCALE, d[:, 1] / DETAIL_SCALE * gain
    textured = fit & (detail_d >= DETAIL / 2)
    checked = textured.sum(axis=1) >= MIN_FIT // 2
    ok &= ~checked | (_quantiles(error, textured, 0.75) <= EDGES_ALIGNED)  # a crop moves edges
    # a sharpened darker copy shows more detail than the pair holds: it is scaled to the pair's
    # own ratio (never up: a softer darker copy is no reference for more detail)
    ratio = _quantiles(detail_a / np.where(textured, detail_d, 1.0), textured, 0.5)
    expected = detail_d * np.where(checked, np.minimum(ratio, 1.0), 1.0)[:, None]
    # grain or noise added to the darker copy is no detail kept: its floor, the detail of its
    # smoothest 5% of blocks (a clean photo has flat ones: sky, a wall, a white frame dimmed),
    # is taken off (noise adds to detail in quadrature)
    noise = _quantiles(expected**2, lit, NOISE_FLOOR)
    expected = np.sqrt(np.maximum(expected**2 - np.nan_to_num(noise)[:, None], 0.0))
    lost = (a[:, 2] / 255 >= LOST_CLIPPED) & (d[:, 0] * gain >= PREDICTED)
    # the darker copy keeps the highlights: it does not clip there itself (a white border or
    # watermark painted on it does), and every pixel of its block would clip at the gain (a line,
    # a dark watermark, an edge moved by a zoom or a shift would not: it is not the same picture
    # there)
    lost &= (d[:, 2] / 255 <= KEEPS_CLIPPED) & (d[:, 4] * gain >= WOULD_CLIP)
    lost &= (expected >= DETAIL) & (detail_a <= KEPT * expected)
    return np.where(ok, lost.mean(axis=1), 0.0)


def _gains(
    a: np.ndarray, d: np.ndarray, fit: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (rows of P×blocks) where `ok`: the gain field g (per block) with a ≈ g·d,
    fitted on `fit` and trimmed twice of blocks off by more than twice the median (at least 2%;
    a pair left with fewer than MIN_FIT blocks keeps the fit before), and each block's relative
    error. With the ridge every system is positive definite: it always has its one solution."""
    gain, error = np.zeros_like(a), np.zeros_like(a)
    use, active = fit.copy(), ok.copy()
    for _ in range(3):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        w = use[rows] * d[rows]  # the normal equations as two matrix products over the blocks
        m = ((w * d[rows]) @ _OUTER).reshape(-1, 6, 6)
        # a little ridge on the field's shape (not its level): fitted blocks that lie on a line
        # leave a term free, and without it the gain flies off wherever nothing was fitted
        m[:, _SHAPE, _SHAPE] += RIDGE * m[:, :1, 0]
        coef = np.linalg.solve(m, ((w * a[rows]) @ _BASIS)[..., None])[..., 0]
        gain[rows] = coef @ _BASIS.T
        error[rows] = np.abs(a[rows] - gain[rows] * d[rows]) / np.maximum(a[rows], 1.0)
        cut = np.maximum(2 * _quantiles(error[rows], fit[rows], 0.5), 0.02)
        use[rows] = fit[rows] & (error[rows] <= cut[:, None])
        active[:] = False
        active[rows] = use[rows].sum(axis=1) >= MIN_FIT
    return gain, error


def _quantiles(x: np.ndarray, mask: np.ndarray, q: float) -> np.ndarray:
    """Per row of `x` (P×blocks), np.quantile's linear `q` quantile of its values where `mask`
    (NaN where none), all rows at once."""
    v = np.sort(np.where(mask, x, np.inf), axis=1)
    k = mask.sum(axis=1)
    at = q * np.maximum(k - 1, 0)
    low = np.floor(at).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(k - 1, 0))
    rows = np.arange(len(x))
    some = k > 0
    lo, hi = np.where(some, v[rows, low], 0.0), np.where(some, v[rows, high], 0.0)
    return np.where(some, lo + (hi - lo) * (at - low), np.nan)


def flagged(brighter: np.ndarray, darker: np.ndarray) -> float | None:
    """`lost_share` when it reaches LOST_BLOCKS blocks, else None."""
    share = lost_share(brighter, darker)
    return share if reaches(share) else None


def reaches(share: float | np.ndarray) -> bool | np.ndarray:
    """Whether a `lost_share` reaches LOST_BLOCKS blocks: "highlights clipped"."""
    return share * THUMB * THUMB >= LOST_BLOCKS - 1e-9
