"""Image files: checking, hashing and fast decoding to fixed-size uint8 arrays."""

from __future__ import annotations

import glob
import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imagion.errors import ImagionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Instagram serves at most 1080×1350; anything far above this is a mistake or an attack.
MAX_PIXELS = 60_000_000


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def open_image(path: str | Path) -> Image.Image:
    """Open an image lazily (header only), refusing non-images and decompression bombs."""
    path = Path(path)
    if not path.is_file():
        raise ImagionError(f"{path}: image file is missing.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImagionError(
            f"{path}: refused, too many pixels (decompression bomb?): {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImagionError(f"{path}: not an image Pillow can read.") from exc
    except OSError as exc:
        raise ImagionError(f"{path}: cannot read image ({exc}).") from exc
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise ImagionError(
            f"{path}: refused, {w}×{h} is {w * h:,} pixels (limit {MAX_PIXELS:,}); "
            "a decompression bomb or not a photo."
        )
    return im


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) of a readable image; raises ImagionError otherwise."""
    im = open_image(path)
    try:
        return im.size
    finally:
        im.close()


def load_square(path: str | Path, size: int) -> np.ndarray:
    """Decode an image into a size×size×3 uint8 array: centre crop to a square, then resize.

    JPEGs are decoded at reduced scale through libjpeg's DCT scaling (`Image.draft`), so a
    1080×1080 photo meant for 100×100 decodes 8× faster than a full decode.
    """
    im = open_image(path)
    try:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        im = ImageOps.exif_transpose(im) if im.format in ("JPEG", "WEBP") else im
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + s, top + s))
        return np.asarray(im, dtype=np.uint8)
    except ImagionError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImagionError(f"{path}: image is damaged ({exc}).") from exc
    finally:
        im.close()


def find_images(paths: list[str | Path], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Expand files, folders and globs into image paths; returns (images, problems)."""
    images: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            images.extend(
                sorted(q for q in it if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif p.is_file():
            images.append(p)
        else:
            matches = (
                sorted(glob.glob(str(raw), recursive=recursive))
                if any(c in str(raw) for c in "*?[")
                else []
            )
            if matches:
                images.extend(Path(m) for m in matches if Path(m).is_file())
            else:
                problems.append(f"{raw}: no such file or folder.")
    seen: set[Path] = set()
    unique = []
    for p in images:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(p)
    return unique, problems
