"""Candidate neighbours for grouping: for each photo, the few earlier photos (in the order the
photos are grouped, best first) whose groups it might join, so grouping costs about N log N
instead of comparing every photo with every group.

Three sources, merged: the NEIGHBOURS nearest photos by pooled features (all pairs in blocks up
to EXACT_UP_TO photos; beyond, an inverted-file search on the features projected to SEARCH_DIMS
principal components: see _inverted_knn), photos
whose perceptual hash shares a 16-bit quarter (a re-saved copy differs in at most HASH_BITS of
64 bits, so one quarter is always equal) and photos taken within BURST_SECONDS (EXIF). A group
whose average similarity passes the rule has at least one member at least that similar, so the
nearest neighbours find it; the hash and time neighbours keep re-saved copies and bursts together
when a scene has more near-copies than NEIGHBOURS.

Everything is computed on the rows in the order given (the grouping order, which depends only on
the photos), so the same photos give the same candidates whatever order they were listed in.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from imagion.progress import Progress

NEIGHBOURS = 16  # nearest photos by features, per photo
EXACT_UP_TO = 6000  # up to this many photos, every pair is compared (exact)
SEARCH_DIMS = 128  # principal components the index searches in (beyond EXACT_UP_TO)
PCA_SAMPLE = 8000  # rows the projection is fitted on
LISTS = 2.0  # inverted lists: LISTS × √N, each fitted on about 32 photos…
PROBES = 8  # …and a list's photos are compared with the photos of its PROBES nearest lists
HASH_WINDOW = 8  # per photo and hash quarter, the earlier photos with an equal quarter
TIME_WINDOW = 8  # per photo, the earlier photos within the burst window
BLOCK = 2048  # rows per block of a matrix product or a search

_progress: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "imagion_neighbours_progress", default=None
)


@contextlib.contextmanager
def reporting(progress: Progress | None) -> Iterator[None]:
    """Grouping inside this block reports its progress to `progress` (stages "neighbours" and
    "grouping"), without every caller passing it through."""
    token = _progress.set(progress)
    try:
        yield
    finally:
        _progress.reset(token)


def report(done: int, total: int, stage: str) -> None:
    progress = _progress.get()
    if progress is not None:
        progress(done, total, stage)


@dataclass
class Candidates:
    """For position p: the earlier positions `earlier[start[p]:start[p + 1]]` (ascending), and
    whether each is a re-saved copy of p (`resaved`, same slice)."""

    start: np.ndarray
    earlier: np.ndarray
    resaved: np.ndarray

    def of(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.start[p], self.start[p + 1]
        return self.earlier[s:e], self.resaved[s:e]


def candidates(
    feats: np.ndarray | None,
    rows: np.ndarray,
    hashes: np.ndarray,
    colours: np.ndarray,
    times: list[float | None],
    *,
    burst_seconds: float,
    hash_bits: int,
    hash_colour: float,
    exposure_bits: int = 0,
    exposure_chroma: float = 0.0,
) -> Candidates:
    """The candidate pairs of the photos in grouping order: position p is `feats[rows[p]]`,
    `hashes[p]`, `colours[p]`, `times[p]`. A pair is a re-saved copy when at most `hash_bits`
    of the hash differ and no channel's mean moves by more than `hash_colour`, or an exposure
    variant (darker, brighter) when at most `exposure_bits` differ and the mean colour's share of
    each channel (its hue) moves by at most `exposure_chroma` (a hash with a picture in it:
    8 to 56 bits set; a flat image's is all zeros)."""
    n = len(hashes)
    pairs = [_hash_pairs(hashes), _time_pairs(times, burst_seconds)]
    if feats is not None and n > 1:
        pairs.append(_feature_pairs(feats, rows))
    a = np.concatenate([p[0] for p in pairs]).astype(np.int64)
    b = np.concatenate([p[1] for p in pairs]).astype(np.int64)
    later, first = np.maximum(a, b), np.minimum(a, b)
    keep = later != first
    key = np.unique(later[keep] * n + first[keep])  # sorted: by later, then earlier
    later, first = key // max(n, 1), key % max(n, 1)
    bits = _popcount(hashes[later] ^ hashes[first])
    close = bits <= hash_bits
    close &= np.abs(colours[later] - colours[first]).max(axis=1) <= hash_colour
    if exposure_bits:
        hue = colours / np.maximum(colours.sum(axis=1, keepdims=True), 1e-6)
        ones = _popcount(hashes[later])
        variant = (bits <= exposure_bits) & (ones >= 8) & (ones <= 56)
        variant &= np.abs(hue[later] - hue[first]).max(axis=1) <= exposure_chroma
        close |= variant
    start = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(later, minlength=n), out=start[1:])
    return Candidates(start, first, close)


def _feature_pairs(feats: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(rows)
    k = min(NEIGHBOURS, n - 1)
    if n <= EXACT_UP_TO:
        return _blocked_knn(np.asarray(feats[rows], np.float32), k)
    return _inverted_knn(_projected(feats, rows), k)


def _inverted_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Near rows of each row, approximately: the rows fall in LISTS × √N lists (k-means on an
    evenly spaced sample, fixed seed); each row is compared with the rows of its PROBES nearest
    lists, one matrix product per list (BLAS, fast), and keeps the k // 4 nearest of each list.
    About N·√N·PROBES/LISTS products of SEARCH_DIMS values."""
    n = len(x)
    nlist = max(1, int(LISTS * np.sqrt(n)))
    sample = x[:: max(1, n // (nlist * 32))]
    pick = np.random.default_rng(0).choice(len(sample), nlist, replace=False)
    centres = sample[np.sort(pick)].copy()
    for _ in range(8):
        centres = _means(sample, _nearest(sample, centres), centres)
    where = _nearest(x, centres)
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(nlist + 1))
    probes = _nearest(x, centres, min(PROBES, nlist)).ravel()
    asks = np.argsort(probes, kind="stable")
    ask_bounds = np.searchsorted(probes[asks], np.arange(nlist + 1))
    asker = asks // min(PROBES, nlist)
    half_norms = 0.5 * (x * x).sum(axis=1)
    a, b = [], []
    for lst in range(nlist):
        members = order[bounds[lst] : bounds[lst + 1]]
        queries = asker[ask_bounds[lst] : ask_bounds[lst + 1]]
        if len(members) > 1 and len(queries):
            sims = x[queries] @ x[members].T - half_norms[members]
            sims[members[None, :] == queries[:, None]] = -np.inf  # not itself
            kk = min(max(1, k // 4), len(members) - 1)
            a.append(np.repeat(queries, kk))
            b.append(members[np.argpartition(-sims, kk - 1, axis=1)[:, :kk]].ravel())
        if lst % 64 == 63 or lst == nlist - 1:
            report(lst + 1, nlist, "neighbours")
    return _cat(a), _cat(b)


def _nearest(x: np.ndarray, centres: np.ndarray, m: int = 1) -> np.ndarray:
    """The nearest centre of each row (m > 1: the m nearest, N×m), in blocks."""
    half = 0.5 * (centres * centres).sum(axis=1)
    out = np.empty((len(x), m), np.int64)
    for s in range(0, len(x), BLOCK * 4):
        score = x[s : s + BLOCK * 4] @ centres.T - half
        if m == 1:
            out[s : s + BLOCK * 4, 0] = score.argmax(axis=1)
        else:
            out[s : s + BLOCK * 4] = np.argpartition(-score, m - 1, axis=1)[:, :m]
    return out[:, 0] if m == 1 else out


def _means(x: np.ndarray, where: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The mean of each centre's rows (a centre with none stays)."""
    order = np.argsort(where, kind="stable")
    counts = np.bincount(where, minlength=len(centres))
    filled = np.flatnonzero(counts)
    sums = np.add.reduceat(x[order], np.concatenate([[0], np.cumsum(counts)[:-1]])[filled])
    out = centres.copy()
    out[filled] = sums / counts[filled, None]
    return out


def _blocked_knn(x: np.ndarray, k: int, l2: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar rows of each row (inner product, or the nearest by `l2` distance),
    every pair compared in blocks."""
    n = len(x)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    x32 = np.ascontiguousarray(x, np.float32)
    half_norms = 0.5 * (x32 * x32).sum(axis=1) if l2 else np.zeros(n, np.float32)
    out = np.empty((n, k), np.int64)
    for s in range(0, n, BLOCK):
        sims = x32[s : s + BLOCK] @ x32.T - half_norms
        rows = np.arange(s, min(s + BLOCK, n))
        sims[rows - s, rows] = -np.inf  # not itself
        out[s : s + BLOCK] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        report(min(s + BLOCK, n), n, "neighbours")
    return np.repeat(np.arange(n), k), out.ravel()


def _projected(feats: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The rows centred and projected on their SEARCH_DIMS principal components, float32:
    nearest in this space ≈ most similar by cosine. The components come from an evenly spaced
    sample of PCA_SAMPLE rows by a randomized range finder (two power iterations, a fixed
    seed), which costs a few matrix products rather than an eigendecomposition of F×F."""
    n, f = len(rows), feats.shape[1]
    sample = np.asarray(feats[rows[:: max(1, n // PCA_SAMPLE)]], np.float32)
    mean = sample.mean(axis=0)
    sample -= mean
    if f <= SEARCH_DIMS:
        basis = np.eye(f, dtype=np.float32)
    else:
        omega = np.random.default_rng(0).standard_normal((f, SEARCH_DIMS + 16), np.float32)
        q = _orthonormal(sample.T @ (sample @ omega))
        for _ in range(2):
            q = _orthonormal(sample.T @ (sample @ q))
        b = sample @ q
        _, vectors = np.linalg.eigh((b.T @ b).astype(np.float64))
        basis = np.ascontiguousarray(q @ vectors[:, ::-1][:, :SEARCH_DIMS], np.float32)
    out = np.empty((n, basis.shape[1]), np.float32)
    for s in range(0, n, BLOCK * 4):
        block = np.asarray(feats[rows[s : s + BLOCK * 4]], np.float32)
        out[s : s + BLOCK * 4] = (block - mean) @ basis
    return out


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning `y`'s (tall, thin): from the eigenvectors of the small Gram
    matrix, not a QR of the tall one (LAPACK on a loaded machine is slow on tall matrices)."""
    w, v = np.linalg.eigh((y.T @ y).astype(np.float64))
    keep = w > w.max() * 1e-10
    return np.asarray(y @ (v[:, keep] / np.sqrt(w[keep])), np.float32)


def _hash_pairs(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose hashes share a 16-bit quarter: each photo with up to HASH_WINDOW earlier
    photos of equal quarter (sorted by quarter, then position)."""
    n = len(hashes)
    a, b = [], []
    for q in range(4):
        key = (hashes >> np.uint64(16 * q)) & np.uint64(0xFFFF)
        order = np.lexsort((np.arange(n), key))
        sorted_key = key[order]
        for w in range(1, HASH_WINDOW + 1):
            same = sorted_key[w:] == sorted_key[:-w]
            a.append(order[w:][same])
            b.append(order[:-w][same])
    return _cat(a), _cat(b)


def _time_pairs(times: list[float | None], burst_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs taken within `burst_seconds`: each photo with up to TIME_WINDOW photos before it in
    time."""
    known = np.array([p for p, t in enumerate(times) if t is not None], np.int64)
    if len(known) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = np.array([times[p] for p in known], np.float64)
    order = np.lexsort((known, t))
    t, pos = t[order], known[order]
    a, b = [], []
    for w in range(1, TIME_WINDOW + 1):
        near = t[w:] - t[:-w] <= burst_seconds
        a.append(pos[w:][near])
        b.append(pos[:-w][near])
    return _cat(a), _cat(b)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


_POP16 = np.array([bin(k).count("1") for k in range(1 << 16)], np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.uint64)
    return _POP16[x.view(np.uint16).reshape(len(x), 4)].sum(axis=1)
