"""Camera RAW through LibRaw (`rawpy`): the preview the camera embedded, fast; the raw data
demosaiced at half size only when a file has no usable preview, and then said."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from PIL import Image

from imagion.errors import InputError

logger = logging.getLogger("imagion")

# A preview smaller than this (short side, pixels) is an old camera's 160×120 thumbnail, not a
# photo: the raw data is demosaiced instead.
MIN_PREVIEW_SIDE = 320
# LibRaw's flip → the EXIF orientation that turns the image upright
_FLIP_TO_ORIENTATION = {3: 3, 5: 8, 6: 6}
ORIENTATION = 0x0112


def _upright_as(im: Image.Image, flip: int) -> Image.Image:
    """Record the raw file's orientation on its preview (a preview JPEG with its own EXIF
    orientation keeps that one), so that decoding turns it upright like every other photo."""
    exif = im.getexif()
    if exif.get(ORIENTATION, 1) in (0, 1) and flip in _FLIP_TO_ORIENTATION:
        exif[ORIENTATION] = _FLIP_TO_ORIENTATION[flip]
    return im


def open_raw(source: Path | bytes, where: str, max_pixels: int) -> Image.Image:
    """A camera RAW file as a Pillow image: its embedded preview (JPEG or bitmap), or its raw
    data demosaiced at half size when it has no usable preview (refused beyond `max_pixels`
    before anything is unpacked). InputError naming `where` for anything LibRaw cannot read."""
    try:
        import rawpy
    except ImportError:
        raise InputError(
            f"{where}: camera RAW needs `rawpy`, which is missing here: pip install rawpy "
            "(part of imagion's light install); skipped."
        ) from None
    try:
        raw = rawpy.imread(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except rawpy.LibRawError as exc:
        raise InputError(f"{where}: not a RAW file LibRaw reads ({_why(exc)}); skipped.") from exc
    except OSError as exc:
        raise InputError(f"{where}: cannot read image ({exc}).") from exc
    with raw:
        flip = raw.sizes.flip
        preview = _preview(raw, rawpy, where)
        if preview is not None:
            return _upright_as(preview, flip)
        w, h = raw.sizes.raw_width, raw.sizes.raw_height
        if w * h > max_pixels:
            raise InputError(
                f"{where}: refused, a {w}×{h} RAW ({w * h:,} pixels, limit {max_pixels:,}) "
                "without a usable embedded preview; export it as JPEG from your RAW editor."
            )
        try:
            rgb = raw.postprocess(half_size=True, output_bps=8, use_camera_wb=True)
        except (rawpy.LibRawError, MemoryError, ValueError) as exc:
            raise InputError(
                f"{where}: no usable preview, and its raw data cannot be decoded "
                f"({_why(exc)}); skipped."
            ) from exc
    logger.warning(
        "%s: no usable embedded preview; its raw data was demosaiced (half size, the camera's "
        "white balance: slower, and colours may differ from your RAW editor's).",
        where,
    )
    # postprocess already turned it upright
    return Image.fromarray(rgb, "RGB")


def raw_size(source: Path | bytes, where: str) -> tuple[int, int]:
    """A RAW file's upright image size (width, height) from its header, nothing decoded."""
    try:
        import rawpy
    except ImportError:
        raise InputError(f"{where}: camera RAW needs `rawpy`, which is missing here.") from None
    try:
        raw = rawpy.imread(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except rawpy.LibRawError as exc:
        raise InputError(f"{where}: not a RAW file LibRaw reads ({_why(exc)}); skipped.") from exc
    except OSError as exc:
        raise InputError(f"{where}: cannot read image ({exc}).") from exc
    with raw:
        w, h, flip = raw.sizes.width, raw.sizes.height, raw.sizes.flip
    return (h, w) if flip in (5, 6) else (w, h)


def _preview(raw: Any, rawpy: Any, where: str) -> Image.Image | None:
    """The embedded preview when there is one of a usable size, else None."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except rawpy.LibRawError as exc:
        logger.debug("%s: preview unreadable (%s)", where, _why(exc))
        return None
    im: Image.Image
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            im = Image.open(io.BytesIO(thumb.data), formats=("JPEG",))
        except (OSError, ValueError, SyntaxError):
            return None
    else:
        arr = thumb.data
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype.itemsize != 1:
            return None
        im = Image.fromarray(arr, "RGB")
    if min(im.size) < MIN_PREVIEW_SIDE:
        im.close()
        return None
    return im


def _why(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc.args[0] if exc.args else None, bytes):
        text = exc.args[0].decode(errors="replace")
    return text or type(exc).__name__
