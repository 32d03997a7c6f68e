"""Technical quality of a photo, measured: sharpness of its subject, exposure, resolution and how
hard it was compressed — what a person checks first, and what the likes model cannot see.

Everything comes from what the ranking pass already has: the decoded model input (S×S×3, the
photo's centre square at the model's size) and the file's header (its pixel size and, for a
JPEG, its quantization tables: Pillow reads them without decoding). No second decode.

- sharpness: how much of the picture's detail sits at the finest scale — per tile of an 8×8 grid,
  √(mean Laplacian² / mean gradient²) of the grey image (independent of brightness and contrast,
  so a dark photo is not "blurry"), averaged over the subject's tiles (the salient tenth found
  as in `imagion.inference.subject`), else over the sharpest quarter of the textured tiles: a
  shallow depth of field with a sharp subject is sharp.
- exposure: the mean brightness (0–1), the 99th percentile of brightness (a photo with no bright
  part at all is too dark) and the share of pixels at the top of the range (clipped highlights).
- resolution: the short side in pixels, from the header.
- compression: the JPEG quality (1–100, IJG scale) that its luminance quantization table
  corresponds to (None for other formats).

The thresholds past which a plain flag is shown were measured (bench/quality_flags.py,
docs/quality.md): generated degradations of real photos (ig-celeb12) against the originals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np

from imagion.errors import ImagionError
from imagion.formats.openers import kind_of
from imagion.formats.raw import raw_size
from imagion.images import (
    is_raw,
    load_square,
    open_image,
    read_image_bytes,
    shown_size,
    zip_member,
)
from imagion.inference.highlights import CLIP, no_thumbnails, thumbnails
from imagion.inference.subject import SALIENT, saliency_of
from imagion.names import shown_name

# Thresholds, each measured on 20 ig-celeb12 photos and their generated copies, with the false
# flags checked on all 120 ig-celeb12 photos and 1,000 instagram-2017 posts (bench/quality_flags.py;
# the figures are in docs/quality.md).
# sharpness below this: "blurry" (all 120 ig-celeb12 photos and a blurred copy of each: 4 photos
# below it — smooth studio portraits — and 118 copies; at 0.95, 3 and 115; at 1.12, 18 and 120)
BLURRY = 1.0
# "too dark": mean brightness below DARK_MEAN (darkened to 40%: ≤ 0.36) and its 99th percentile
# below DARK_TOP (darkened ≤ 0.40; originals ≥ 0.48)
DARK_MEAN = 0.37
DARK_TOP = 0.44
# share of pixels at ≥ CLIP_LEVEL above this: "highlights clipped" on its own (originals ≤ 0.407:
# a white backdrop is clipped too, on purpose); below it only a darker copy of the same picture
# tells a photo's clipping apart (inference/highlights.py, inference/near_copies.py)
CLIPPED = 0.41
CLIP_LEVEL = CLIP / 255  # 250 of 255, as the block thumbnails count it
LOW_RESOLUTION = 720  # short side below this many pixels: "low resolution" (Instagram shows 1080)
COMPRESSED = 60  # JPEG quality below this: "heavily compressed" (Instagram's own: 72–89)

QUALITY_COLUMNS = (
    "sharpness",
    "brightness",
    "bright_top",
    "clipped",
    "width",
    "height",
    "jpeg_quality",
    "at_top",
    "near_copy",
    "lost_highlights",
)
FLAGS = ("blurry", "too dark", "highlights clipped", "low resolution", "heavily compressed")
GRID = 8  # tiles per side for sharpness
PIXEL_MEASURES = 5  # sharpness, brightness, bright_top, clipped, at_top
# at_top: the share of pixels within this many levels of the photo's own brightest level — a
# white area dimmed is still a flat top (a darker copy of a clipped photo keeps no highlights)
AT_TOP_LEVELS = 2
# the saliency map that finds the subject's tiles: 28×28 of a 224 px input (3.5 cells a tile);
# 32% cheaper than crop advice's 64 px, with as good a split of sharp and blurred photos
# (bench/quality_flags.py)
SUBJECT_SIDE = 28
TEXTURED = 0.05  # a tile is textured when its gradient energy is ≥ this share of the 90th pct's

# IJG's standard luminance quantization table (libjpeg, quality 50), in natural order as Pillow
# gives a JPEG's tables
# fmt: off
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)
# fmt: on


@dataclass(frozen=True)
class Quality:
    """The measured technical quality of one photo, and the flags past the thresholds."""

    sharpness: float
    brightness: float  # mean, 0–1
    bright_top: float  # 99th percentile of brightness, 0–1
    clipped: float  # share of pixels at the top of the range
    width: int | None = None  # pixels, from the header (None: unknown)
    height: int | None = None
    jpeg_quality: int | None = None  # the IJG quality of its luminance table (None: not a JPEG)
    flags: list[str] = field(default_factory=list)
    # the share of pixels at the photo's own top (within AT_TOP_LEVELS of its brightest level)
    at_top: float = 0.0
    # the darker copy of the same picture that keeps highlights this photo lost, and the share of
    # the picture where it does (inference/near_copies.py); None: none in the run
    near_copy: str | None = None
    lost_highlights: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "sharpness": round(self.sharpness, 3),
            "brightness": round(self.brightness, 3),
            "bright_top": round(self.bright_top, 3),
            "clipped": round(self.clipped, 4),
            "width": self.width,
            "height": self.height,
            "jpeg_quality": self.jpeg_quality,
            "at_top": round(self.at_top, 4),
            "near_copy": self.near_copy,
            "lost_highlights": None
            if self.lost_highlights is None
            else round(self.lost_highlights, 4),
            "flags": list(self.flags),
        }

    @property
    def flawed(self) -> bool:
        return bool(self.flags)

    @property
    def text(self) -> str:
        """The flags as a person reads them ("" when none): "flagged: blurry, too dark"."""
        return flag_words(self.flags, self.near_copy)


def with_quality_columns(row: Mapping[str, object]) -> dict[str, object]:
    """A JSON row as a CSV row: its `quality` spread into QUALITY_COLUMNS and `flags` ("; ")."""
    q = row.get("quality")
    cells = dict(q) if isinstance(q, dict) else {}
    flags = cells.get("flags")
    cells["flags"] = "; ".join(map(str, flags)) if isinstance(flags, list) else ""
    return {**row, **cells}


def flag_words(flags: object, near_copy: object = None) -> str:
    """Flags (a Quality's, or the `flags` of its `to_dict()`) as a person reads them ("" when
    none): "flagged: blurry, too dark"; clipped highlights told apart by a darker copy name it
    (`near_copy`, as given, or relative to the working folder): "highlights clipped beside the
    darker copy shoot/IMG_1.jpg"."""
    if not isinstance(flags, list) or not flags:
        return ""
    said = ""
    if isinstance(near_copy, str) and near_copy:
        said = f" beside the darker copy {shown_name(_from_here(near_copy))}"
    words = [f"{f}{said}" if f == "highlights clipped" else str(f) for f in flags]
    return "flagged: " + ", ".join(words)


def _from_here(path: str) -> str:
    """`path` relative to the working folder when it lies under it, else as it is."""
    try:
        return str(PurePath(path).relative_to(Path.cwd()))
    except ValueError:
        return path


# each flag as the end of "the likes model's favourite …"
FLAG_PHRASES = {
    "blurry": "is blurry",
    "too dark": "is too dark",
    "highlights clipped": "has clipped highlights",
    "low resolution": "has a low resolution",
    "heavily compressed": "is heavily compressed",
}


def flag_text(q: Quality | None) -> str:
    """A photo's flags as the table, the card and the page show them ("" when none)."""
    return q.text if q is not None else ""


def jpeg_quality(tables: dict[int, object] | None) -> int | None:
    """The IJG quality (1–100) a JPEG's luminance quantization table was made with: its median
    scale against the standard table, over the entries libjpeg did not clamp to 1 or 255."""
    if not tables or 0 not in tables:
        return None
    luma = np.asarray(list(tables[0]), dtype=np.float64)  # type: ignore[call-overload]
    if luma.size != 64:
        return None
    free = (luma > 1) & (luma < 255)
    ratio = luma[free] / IJG_LUMA[free] if free.any() else luma / IJG_LUMA
    scale = 100.0 * float(np.median(ratio))
    q = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(q), 1, 100))


def header_facts(
    source: str | Path | bytes, name: str | None = None
) -> tuple[int, int, int | None]:
    """(width, height as the photo is shown — turned by its EXIF orientation — and JPEG quality
    or None) from the file's header, without decoding it."""
    where = name or str(source)
    # opening a RAW decodes its preview: its header is read instead (a JPEG named so is a JPEG)
    if kind_of(Path(where).suffix) == "RAW":
        data: Path | bytes
        if isinstance(source, bytes) or zip_member(source) is None:
            data = source if isinstance(source, bytes) else Path(source)
        else:
            data = read_image_bytes(source)  # once
        if is_raw(data, where):
            return (*raw_size(data, where), None)
    im = open_image(source, name)
    try:
        tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
        return (*shown_size(im), jpeg_quality(tables))
    finally:
        im.close()


def _tile_sharpness(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tile of a GRID×GRID grid of each image (N×H×W): the sharpness √(E|∇²|² / E|∇|²) and
    the gradient energy (N×GRID×GRID); and the squared Laplacian (N×(H−2)×(W−2))."""
    c = grey[:, 1:-1, 1:-1]
    gx = grey[:, 1:-1, 2:] - c
    gy = grey[:, 2:, 1:-1] - c
    lap = grey[:, 1:-1, 2:] + grey[:, 1:-1, :-2]
    lap += grey[:, 2:, 1:-1]
    lap += grey[:, :-2, 1:-1]
    lap -= 4 * c
    n = (min(lap.shape[1:]) // GRID) * GRID
    t = n // GRID
    if t == 0:  # an input too small for the grid: no sharpness measured
        zeros = np.zeros((len(grey), GRID, GRID))
        return zeros, zeros, lap * lap

    def tiles(a: np.ndarray) -> np.ndarray:
        """Each tile's mean: whole rows added first (5× the speed of short runs first)."""
        a = a[:, :n, :n].reshape(len(a), GRID, t, n).sum(axis=2)
        return a.reshape(len(a), GRID, GRID, t).sum(axis=3) / (t * t)

    gx *= gx  # in place: no temporaries of the whole batch
    gy *= gy
    gx += gy
    e1 = tiles(gx)
    lap *= lap
    e2 = tiles(lap)
    return np.sqrt(e2 / np.maximum(e1, 1e-9)), e1, lap


def _subject_tiles(grey: np.ndarray) -> np.ndarray:
    """Per image (N×H×W), the GRID×GRID tiles holding the subject: a quarter or more of the
    most salient cells a tile could hold (saliency as in inference/subject.py)."""
    sal = saliency_of(grey, SUBJECT_SIDE)
    n, h, w = sal.shape
    cut = np.quantile(sal.reshape(n, -1), SALIENT, axis=1)[:, None, None]
    cells = (sal >= cut).astype(np.float64)
    rows = np.linspace(0, h, GRID + 1).astype(int)[:-1]
    cols = np.linspace(0, w, GRID + 1).astype(int)[:-1]
    share = np.add.reduceat(np.add.reduceat(cells, rows, axis=1), cols, axis=2)
    top = share.max(axis=(1, 2), keepdims=True)
    return (share >= 0.25 * top) & (top > 0)


def sharpness_and_laplacian(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subject's sharpness (module docstring) of grey images (N×H×W, 0–255), and the squared
    Laplacian it was measured from (N×(H−2)×(W−2): the block thumbnails reuse it)."""
    sharp, energy, lap2 = _tile_sharpness(grey)
    textured = (
        energy >= TEXTURED * np.quantile(energy.reshape(len(grey), -1), 0.9, axis=1)[:, None, None]
    )
    subject = _subject_tiles(grey) & textured
    out = np.zeros(len(grey))
    for k in range(len(grey)):
        if subject[k].sum() >= 3:
            out[k] = sharp[k][subject[k]].mean()
        elif textured[k].any():
            values = np.sort(sharp[k][textured[k]])[::-1]
            out[k] = values[: max(1, len(values) // 4)].mean()
    return out, lap2


CHUNK = 8  # images measured at a time: their intermediate arrays stay in the CPU's cache


def pixel_measures(batch: np.ndarray) -> np.ndarray:
    """Per image of a uint8 batch N×S×S×3: sharpness, mean brightness, its 99th percentile, the
    clipped share and the share at its own top (N×PIXEL_MEASURES)."""
    return measures_and_thumbnails(batch)[0]


def measures_and_thumbnails(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pixel_measures` of a uint8 batch N×S×S×3 and its block thumbnails (N×THUMB_BYTES uint8,
    inference/highlights.py), CHUNK images at a time (28% faster than all at once, same
    numbers)."""
    parts = [_measures(batch[s : s + CHUNK]) for s in range(0, len(batch), CHUNK)]
    if not parts:
        return np.zeros((0, PIXEL_MEASURES)), no_thumbnails(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _measures(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(batch)
    if n == 0:
        return np.zeros((0, PIXEL_MEASURES)), no_thumbnails(0)
    luma = batch[..., 0].astype(np.uint16)  # (77 R + 150 G + 29 B + 128) >> 8 ≈ BT.601, in place
    luma *= 77
    for channel, weight in ((1, 150), (2, 29)):
        part = batch[..., channel].astype(np.uint16)
        part *= weight
        luma += part
    luma += 128
    luma >>= 8
    hist = np.bincount(
        (luma.reshape(n, -1) + 256 * np.arange(n)[:, None]).ravel(), minlength=256 * n
    )
    counts = hist.reshape(n, 256).astype(np.float64)
    hist = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    levels = np.arange(256) / 255.0
    out = np.zeros((n, PIXEL_MEASURES))
    grey = luma.astype(np.float32)
    out[:, 0], lap2 = sharpness_and_laplacian(grey)
    out[:, 1] = (hist * levels).sum(axis=1)  # no BLAS call: its threads would fight the model
    out[:, 2] = (np.cumsum(hist, axis=1) < 0.99).sum(axis=1) / 255.0
    out[:, 3] = hist[:, levels >= CLIP_LEVEL - 1e-9].sum(axis=1)
    brightest = 255 - np.argmax(counts[:, ::-1] > 0, axis=1)  # each image's brightest level
    at_or_above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # share at each level or above
    out[:, 4] = at_or_above[np.arange(n), np.maximum(brightest - AT_TOP_LEVELS, 0)]
    return out, thumbnails(batch, grey, lap2)


def flags_of(
    sharp: float, mean: float, top: float, clipped: float, short: int | None, q: int | None
) -> list[str]:
    """The plain flags past the thresholds, in FLAGS order."""
    out = []
    if sharp < BLURRY:
        out.append("blurry")
    if mean < DARK_MEAN and top < DARK_TOP:
        out.append("too dark")
    if clipped > CLIPPED:
        out.append("highlights clipped")
    if short is not None and short < LOW_RESOLUTION:
        out.append("low resolution")
    if q is not None and q < COMPRESSED:
        out.append("heavily compressed")
    return out


def assess(measures: np.ndarray, facts: tuple[int, int, int | None] | None) -> Quality:
    """The Quality of one photo from its `pixel_measures` row and its `header_facts`."""
    sharp, mean, top, clipped, at_top = (float(v) for v in measures)
    w, h, q = facts if facts is not None else (None, None, None)
    short = min(w, h) if w is not None and h is not None else None
    flags = flags_of(sharp, mean, top, clipped, short, q)
    return Quality(sharp, mean, top, clipped, w, h, q, flags, at_top=at_top)


Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


# one thread for every Meter of the process (a queue of batches: nothing is started per run)
_MEASURER = ThreadPoolExecutor(1, thread_name_prefix="imagion-quality")


class Meter:
    """Wraps a forward pass so that each batch's pixel measures are taken on its way to the
    model, in a thread of their own while the model runs (numpy and the model both leave the
    interpreter lock, so the two overlap); `stored_rows(paths)` then adds each file's header
    facts — read in the decoding threads when the files were decoded with `load`."""

    def __init__(self, forward: Forward) -> None:
        self.forward = forward
        self.pending: list[Future[tuple[np.ndarray, np.ndarray]]] = []
        self.facts: dict[str, tuple[int, int, int | None] | None] = {}

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        self.pending.append(_MEASURER.submit(measures_and_thumbnails, batch))
        return self.forward(batch)

    def load(self, path: Path, size: int) -> np.ndarray:
        """`load_square` of `path`, and its header facts read while the file is at hand (in the
        decoding thread, beside the model, not after the pass)."""
        square = load_square(path, size)
        self.facts[str(path)] = _facts_or_none(path)
        return square

    @property
    def rows(self) -> list[np.ndarray]:
        """Each batch's pixel measures (N×PIXEL_MEASURES), waited for."""
        return [f.result()[0] for f in self.pending]

    def thumbs(self) -> np.ndarray:
        """Each measured photo's block thumbnail (N×THUMB_BYTES uint8), in order."""
        parts = [f.result()[1] for f in self.pending]
        return np.concatenate(parts) if parts else no_thumbnails(0)

    def stored_rows(self, paths: list[Path]) -> np.ndarray:
        """What the photo index keeps of each photo's quality (STORED_COLUMNS values, NaN for
        unknown): the pixel measures of its pass and the facts of its header. The flags are
        worked out again from these when read, so a changed threshold applies to old rows."""
        rows = np.concatenate(self.rows) if self.rows else np.zeros((0, PIXEL_MEASURES))
        out = np.full((len(paths), STORED_COLUMNS), np.nan, np.float32)
        for k, (p, row) in enumerate(zip(paths, rows, strict=True)):
            out[k, :PIXEL_MEASURES] = row
            facts = self.facts[str(p)] if str(p) in self.facts else _facts_or_none(p)
            if facts is not None:
                w, h, q = facts
                out[k, PIXEL_MEASURES:] = (w, h, np.nan if q is None else q)
        return out


def _facts_or_none(path: Path) -> tuple[int, int, int | None] | None:
    try:
        return header_facts(path)
    except ImagionError:
        return None


# sharpness, brightness, bright_top, clipped, at_top (pixel_measures), width, height, jpeg_quality
STORED_COLUMNS = PIXEL_MEASURES + 3
# the way the measures are taken; raised when a stored measure would come out otherwise, so the
# photo index measures its photos again (2: the subject's saliency map 28×28, was 64×64; 3: at_top,
# and the size as shown, turned by the EXIF orientation; 4: a block thumbnail kept with the row;
# 5: its blocks' least brightness too)
MEASURES_VERSION = 5


def from_row(row: np.ndarray) -> Quality:
    """The Quality of one stored row (Meter.stored_rows)."""
    w, h, q = (None if not np.isfinite(v) else int(v) for v in row[PIXEL_MEASURES:STORED_COLUMNS])
    facts = None if w is None or h is None else (w, h, q)
    return assess(np.asarray(row[:PIXEL_MEASURES], np.float64), facts)
