"""Image files: checking, hashing and fast decoding to fixed-size uint8 arrays."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import io
import os
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from imagion.errors import ImagionError, InputError
from imagion.files import NOT_REGULAR, walk_files
from imagion.formats import colour, openers
from imagion.formats.raw import open_raw
from imagion.memory import DECODING, TRIM_BYTES, ByteBudget, give_back_freed

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")  # what instaloader saves beside a post
# Instagram serves at most 1080×1350; anything far above this is a mistake or an attack.
MAX_PIXELS = 60_000_000
# Extensions Pillow registers but cannot decode here without outside tools, or not as photos.
_NOT_PHOTOS = {
    ".eps",
    ".ps",
    ".pdf",
    ".h5",
    ".hdf",
    ".bufr",
    ".grib",
    ".mpeg",
    ".mpg",
    ".emf",
    ".wmf",
    ".fit",
    ".fits",
}

# open_image checks the pixel count itself (MAX_PIXELS, below Pillow's warning threshold), so
# Pillow's own DecompressionBombWarning is silenced once, here, rather than with
# warnings.catch_warnings() around each open: that context manager is not thread-safe, and the
# decoder threads of rank and serve would leave a process-wide "error" filter behind.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


# The only formats imagion ever decodes: photo formats. Anything else is refused by content,
# whatever its name says (an EPS file named x.jpg would otherwise reach Pillow's EPS plugin,
# which runs Ghostscript when it is installed).
# JPEG covers MPO (phones); HEIF and AVIF come from imagion.formats.openers, camera RAW (not a
# Pillow format) is opened by extension through imagion.formats.raw.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", *openers.EXTRA_FORMATS)
SAID_FORMATS = "JPEG, PNG, WEBP, GIF, TIFF, BMP, HEIC/HEIF, AVIF, camera RAW"


@functools.cache
def photo_formats() -> tuple[str, ...]:
    """The photo formats this Pillow can open (its plugins registered, and imagion's own)."""
    openers.register_openers()
    return tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)


@functools.cache
def readable_suffixes() -> frozenset[str]:
    """Every file extension (lower case) of a photo format imagion can decode here (camera RAW
    included: a RAW file whose opener is missing is named with what to install)."""
    formats = photo_formats()
    return frozenset(
        ext
        for ext, fmt in Image.registered_extensions().items()
        if fmt in formats and ext not in _NOT_PHOTOS
    ) | (openers.HEIF_SUFFIXES | openers.AVIF_SUFFIXES | openers.RAW_SUFFIXES)


# An image inside a .zip (Instagram's "Download your information" export, read in place) is
# stored as "<absolute path of the zip>!/<member>", the jar-URL convention.
ZIP_MEMBER = "!/"
MAX_MEMBER_BYTES = 64 * 2**20  # a photo in an export is well under 10 MB


def zip_member(ref: str | Path) -> tuple[Path, str] | None:
    """(zip file, member name) when `ref` names an image inside a .zip, else None: a file at
    `ref` itself (in a folder named `trip.zip!`) or a folder before `!/` is no zip; a zip that
    is gone still is one (an export moved away: said so when it is read)."""
    text = str(ref)
    i = text.lower().find(".zip" + ZIP_MEMBER)
    if i < 0 or os.path.lexists(text):
        return None
    archive = Path(text[: i + 4])
    return None if archive.is_dir() else (archive, text[i + 4 + len(ZIP_MEMBER) :])


def read_zip_member(
    zf: zipfile.ZipFile, member: str, where: str, limit: int = MAX_MEMBER_BYTES
) -> bytes:
    """A member's bytes, refused beyond `limit` unpacked (its header, then what it really
    unpacks to: a zip bomb lies in its header); InputError naming `where`."""
    try:
        info = zf.getinfo(member)
        if info.file_size > limit:
            raise InputError(
                f"{where}: {info.file_size:,} bytes unpacked, more than {limit // 2**20} MiB; "
                "skipped."
            )
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except KeyError:
        raise InputError(f"{where}: missing from the zip.") from None
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        raise InputError(f"{where}: cannot read it inside the zip ({exc}).") from exc
    if len(data) > limit:
        raise InputError(f"{where}: larger unpacked than its header says; skipped.")
    return data


def read_image_bytes(ref: str | Path) -> bytes:
    """The bytes of an image file, or of an image inside a .zip (bounded: no zip bombs)."""
    inside = zip_member(ref)
    if inside is None:
        return Path(ref).read_bytes()
    archive, member = inside
    if not archive.exists():
        raise InputError(
            f"{archive}: the export zip is not there any more (moved or deleted?); put it back, "
            "or import it again from where it is now (`imagion import NEW.zip`)."
        )
    try:
        with zipfile.ZipFile(archive) as zf:
            return read_zip_member(zf, member, str(ref))
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{ref}: cannot open the zip ({exc}).") from exc


def sha256_file(path: str | Path) -> str:
    if zip_member(path) is not None:
        return hashlib.sha256(read_image_bytes(path)).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def one_file(where: str) -> Iterator[None]:
    """The boundary around reading one image file: any failure is that file's problem, an
    InputError naming it. Pillow raises far more than OSError on damaged files (ValueError
    for a truncated IHDR or a zTXt/iCCP chunk past its text limit, struct.error and TypeError
    for text in a numeric EXIF tag, SyntaxError, IndexError, MemoryError, …), and one bad
    file must never stop a run."""
    try:
        yield
    except ImagionError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{where}: refused, too many pixels (decompression bomb?): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{where}: not a photo imagion opens ({SAID_FORMATS}); skipped.") from exc
    except OSError as exc:
        raise InputError(f"{where}: cannot read image ({_text(exc)}).") from exc
    except Exception as exc:  # the point of the boundary
        raise InputError(
            f"{where}: image is damaged ({_text(exc) or type(exc).__name__})."
        ) from exc


def open_image(
    source: str | Path | bytes, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Open an image lazily (header only) from a path or from bytes (`name` says what it was),
    refusing non-images and decompression bombs (more than `max_pixels`)."""
    where = name or str(source)
    if isinstance(source, bytes):
        fp: str | Path | io.BytesIO = io.BytesIO(source)
    elif zip_member(source) is not None:
        fp = io.BytesIO(read_image_bytes(source))
    else:
        fp = Path(source)
        if not fp.is_file():
            raise InputError(f"{where}: image file is missing.")
    suffix = Path(where).suffix
    named_raw = openers.kind_of(suffix) == "RAW"
    raw = named_raw and openers.raw_inside(suffix, _head(fp))  # a JPEG named .CR2 is a JPEG
    needs = None if named_raw and not raw else openers.missing_opener(suffix)
    if needs is not None:
        raise InputError(f"{where}: opening {suffix} files needs {needs}, missing here; skipped.")
    if raw:
        data = fp.getvalue() if isinstance(fp, io.BytesIO) else Path(fp)
        with one_file(where):
            return _within(open_raw(data, where, max_pixels), where, max_pixels)
    with one_file(where):
        im = Image.open(fp, formats=photo_formats())
    return _within(im, where, max_pixels)


def _head(fp: str | Path | io.BytesIO) -> bytes:
    """The first bytes of a file or a buffer (b"" when it cannot be read: opening says why)."""
    if isinstance(fp, io.BytesIO):
        return fp.getvalue()[:8]
    try:
        with open(fp, "rb") as f:
            return f.read(8)
    except OSError:
        return b""


def is_raw(source: str | Path | bytes, name: str | None = None) -> bool:
    """Whether an image (a path, a zip member or bytes named `name`) is camera RAW: named so, and
    not a JPEG or a PNG inside (openers.raw_inside)."""
    suffix = Path(name or str(source)).suffix
    if openers.kind_of(suffix) != "RAW":
        return False
    if isinstance(source, bytes):
        return openers.raw_inside(suffix, source[:8])
    if zip_member(source) is not None:
        return openers.raw_inside(suffix, read_image_bytes(source)[:8])
    return openers.raw_inside(suffix, _head(Path(source)))


def _text(exc: BaseException) -> str:
    """An exception's text on one line (libheif ends its messages with a newline)."""
    return " ".join(str(exc).split())


def _within(im: Image.Image, where: str, max_pixels: int) -> Image.Image:
    """`im`, or InputError when it has more than `max_pixels` (closed)."""
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise InputError(
            f"{where}: refused, {w}×{h} is {w * h:,} pixels (limit {max_pixels:,}); "
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


SUBSECONDS = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is true


def capture_time(source: str | Path | IO[bytes]) -> float | None:
    """EXIF DateTimeOriginal (with its sub-seconds) as seconds, from the header only; None when
    the file has none or cannot be read (whatever Pillow raises: a damaged file is not a
    capture time, and never stops a run)."""
    try:
        with one_file(str(source)), Image.open(source, formats=photo_formats()) as im:
            exif = im.getexif().get_ifd(0x8769)
            when, sub = exif.get(0x9003), exif.get(0x9291)
    except InputError:
        return None
    if not isinstance(when, str):
        return None
    try:
        t = dt.datetime.strptime(when.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    digits = sub.strip().rstrip("\x00") if isinstance(sub, str) else ""
    frac = float(f"0.{digits}") if SUBSECONDS.fullmatch(digits) else 0.0
    return t.replace(tzinfo=dt.UTC).timestamp() + frac


SCALE_ROWS = 256  # rows of a high-bit-depth image scaled to 8 bits at once


def decoded_bytes(im: Image.Image, size: int) -> int:
    """About how many bytes decoding an opened image takes at its peak (its pixels in their own
    mode, then as 8-bit RGB); a JPEG decodes at reduced scale when `size` is far below it."""
    w, h = im.size
    if im.format == "JPEG":
        scale = 1
        while scale < 8 and min(w, h) // (scale * 2) >= size:
            scale *= 2
        w, h = -(-w // scale), -(-h // scale)
    per_pixel = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "RGBA": 4, "CMYK": 4}
    return w * h * (per_pixel.get(im.mode, 4) + 3 + 3)  # + RGB + the upright/thumbnail copy


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB, scaling high-bit-depth images (16-bit grayscale PNG/TIFF, 32-bit) to 0–255
    instead of clipping them (which turns a 16-bit photo into a white square)."""
    if im.mode in ("RGB", "L", "P", "RGBA", "LA", "CMYK", "YCbCr", "1", "PA", "La", "RGBa"):
        return im.convert("RGB")
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        src = np.asarray(im)  # its own integer or float type: no float64 copy of 16 MP
        if im.mode == "F":
            top = 1.0 if np.nanmax(src, initial=0.0) <= 1.0 else 255.0
        elif im.mode.startswith("I;16"):
            top = 65535.0
        else:  # 32-bit integers: 16-bit data (PNG, TIFF) unless the values say otherwise
            hi = float(np.max(src, initial=0))
            top = 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else hi
        out = np.empty(src.shape, dtype=np.uint8)
        for r in range(0, src.shape[0], SCALE_ROWS):  # bounded memory: a band at a time
            band = np.nan_to_num(src[r : r + SCALE_ROWS].astype(np.float32), copy=False)
            band *= np.float32(255.0 / top)
            np.clip(band, 0, 255, out=band)
            out[r : r + SCALE_ROWS] = np.rint(band, out=band)
        return Image.fromarray(out, "L").convert("RGB")
    return im.convert("RGB")


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(im: Image.Image) -> Image.Image:
    """The image turned as its EXIF Orientation says. Unlike ImageOps.exif_transpose this never
    rewrites the EXIF (which raises struct.error or TypeError on a text value in a numeric tag),
    and an unreadable EXIF means no turn, not a lost photo."""
    method = _TRANSPOSE.get(_orientation(im))
    return im.transpose(method) if method is not None else im


def shown_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as the photo is shown: turned as its EXIF Orientation says (5–8 swap)."""
    w, h = im.size
    return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block: the pixels may still be fine
        return 1
    return value if isinstance(value, int) else 1


def decoded(im: Image.Image, size: int, where: str) -> Image.Image:
    """The pixels of an opened image as 8-bit sRGB (converted from its embedded ICC profile),
    upright (its EXIF orientation, any format); JPEGs decode at reduced scale (libjpeg's DCT
    scaling) when `size` is far below their resolution."""
    with one_file(where):
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        icc = im.info.get("icc_profile")
        turned = upright(im)
        if turned.mode == "CMYK" and colour.profile_space(icc) == "CMYK":
            return colour.to_srgb(turned, icc)
        return colour.to_srgb(to_rgb(turned), icc)


def square(im: Image.Image, size: int) -> Image.Image:
    """Centre crop to a square, then resize to size×size."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + s, top + s))


def jpeg_data_uri(im: Image.Image, quality: int = 80) -> str:
    """`im` as a JPEG `data:` URI, for a page or an HTML sheet that carries its pictures."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def load_square(
    source: str | Path | bytes,
    size: int,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    budget: ByteBudget = DECODING,
) -> np.ndarray:
    """Decode an image (a path, or bytes named `name`) into a size×size×3 uint8 array: centre
    crop to a square, then resize. A 1080×1080 JPEG meant for 100×100 decodes 8× faster than a
    full decode. The decode holds what its pixels take from `budget` (every thread of the
    process shares one): eight 59 MP PNGs decode in turn, not all at once."""
    where = name or str(source)
    im = open_image(source, name, max_pixels)
    need = decoded_bytes(im, size)
    with budget.hold(need):
        try:
            with one_file(where):
                return np.asarray(square(decoded(im, size, where), size), dtype=np.uint8)
        finally:
            im.close()
            if need >= TRIM_BYTES:
                give_back_freed()


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def glob_root(pattern: str) -> tuple[Path, str]:
    """A glob's folder before its first wildcard (`.` when it starts with one), and the rest."""
    parts = Path(pattern).parts
    k = next((i for i, part in enumerate(parts) if _has_magic(part)), len(parts))
    return (Path(*parts[:k]) if k else Path(".")), "/".join(parts[k:])


def is_glob(path: str | Path) -> bool:
    """Whether a path argument is a glob to expand (wildcards, and no such file or folder)."""
    return _has_magic(str(path)) and not os.path.lexists(path)


def _glob(pattern: str, recursive: bool) -> list[Path]:
    """Files matching a glob; `**` (with -r) descends folders without following symlinks, so a
    symlink cycle cannot make it run forever."""
    root, rest = glob_root(pattern)
    if not recursive:
        rest = rest.replace("**", "*")
    try:
        return sorted(p for p in root.glob(rest) if p.is_file())
    except (OSError, ValueError):
        return []


def as_paths(
    paths: str | bytes | os.PathLike | Iterable[str | os.PathLike],
) -> list[str | Path]:
    """The paths given: one str or Path is one path (a folder "shoot", not its five letters)."""
    if isinstance(paths, bytes):  # a path as the OS gives it
        paths = os.fsdecode(paths)
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    return [p if isinstance(p, str | Path) else Path(p) for p in paths]


def left_out_line(left_out: Counter[str]) -> str:
    """ "left out 3 files imagion does not read (.mov, .txt)": what a folder scan passed over."""
    n = sum(left_out.values())
    order = sorted(left_out, key=lambda s: (-left_out[s], s == "", s))  # most first
    kinds = ", ".join(s or "no extension" for s in order[:5])
    more = ", …" if len(left_out) > 5 else ""
    return f"left out {n:,} file{'s' * (n != 1)} imagion does not read ({kinds}{more})"


def find_images(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    recursive: bool = False,
    left_out: Counter[str] | None = None,
) -> tuple[list[Path], list[str]]:
    """Expand files, folders and globs into image paths; returns (images, problems).

    Folders contribute every file whose extension (any case) is a format Pillow reads (the
    others are counted in `left_out` by extension, when given); -r recurses without following
    symlinked folders."""
    images: list[Path] = []
    problems: list[str] = []
    suffixes = readable_suffixes()
    for raw in as_paths(paths):
        p = Path(raw)
        if p.is_dir():
            found, unreadable = walk_files(p, recursive)
            images.extend(q for q in found if q.suffix.lower() in suffixes)
            if left_out is not None:  # counted by extension, for one line (left_out_line)
                left_out.update(q.suffix.lower() for q in found if q.suffix.lower() not in suffixes)
            problems.extend(unreadable)
        elif p.is_file():
            images.append(p)
        elif p.exists():
            problems.append(f"{raw}: {NOT_REGULAR}.")
        else:
            matches = _glob(str(raw), recursive) if _has_magic(str(raw)) else []
            if matches:
                images.extend(matches)
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
