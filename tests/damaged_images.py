"""Damaged image files that crashed Pillow-based code with exceptions other than OSError (issue
#35), and a seeded mutation fuzzer over small files of every photo format imagion decodes."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF")


def _photo(w: int = 24, h: int = 16, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _png() -> bytes:
    buf = io.BytesIO()
    _photo().save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def truncated_ihdr() -> bytes:
    """A PNG whose IHDR says 8 bytes instead of 13 (Pillow: ValueError "Truncated IHDR chunk")."""
    data = _png()
    return data[:8] + struct.pack(">I", 8) + data[12:]


def inflating_chunk(kind: bytes) -> bytes:
    """A PNG with a zTXt or iCCP chunk that inflates past Pillow's text limit (ValueError)."""
    head = b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00"
    data = _png()
    return data[:33] + _chunk(kind, head + zlib.compress(b"a" * 2**21, 9)) + data[33:]


def _exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """Raw little-endian EXIF (TIFF header, IFD0) with the given (tag, type, count, value)."""
    ifd = struct.pack("<H", len(entries))
    extra, at = b"", 8 + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            ifd += struct.pack("<HHII", tag, kind, count, at + len(extra))
            extra += value
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + extra


def rotated_with_text_in_short_tag(fmt: str) -> bytes:
    """A JPEG or WebP turned by its EXIF Orientation, whose ResolutionUnit (a SHORT tag) holds
    text: ImageOps.exif_transpose raised struct.error rewriting the EXIF."""
    raw = _exif([(0x0112, 3, 1, struct.pack("<H", 6)), (0x0128, 2, 6, b"hello\x00")])
    buf = io.BytesIO()
    _photo().save(buf, fmt, exif=b"Exif\x00\x00" + raw if fmt == "JPEG" else raw)
    return buf.getvalue()


def with_capture_time(when: str, subseconds: str, seed: int = 0) -> bytes:
    """A JPEG with EXIF DateTimeOriginal and SubSecTimeOriginal as given."""
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: when, 0x9291: subseconds})
    buf = io.BytesIO()
    _photo(seed=seed).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def damaged() -> dict[str, bytes]:
    """Every reported crash, by file name."""
    return {
        "ihdr.png": truncated_ihdr(),
        "ztxt.png": inflating_chunk(b"zTXt"),
        "iccp.png": inflating_chunk(b"iCCP"),
        "turned.jpg": rotated_with_text_in_short_tag("JPEG"),
        "turned.webp": rotated_with_text_in_short_tag("WEBP"),
    }


def seeds() -> dict[str, bytes]:
    """Small valid files of each format (EXIF with orientation and capture time where the
    format carries it), the fuzzer's starting points."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769).update({0x9003: "2024:05:01 10:00:00", 0x9291: "25"})
    out = {}
    for fmt in FORMATS:
        buf = io.BytesIO()
        im = _photo(20, 12, seed=len(out))
        extra = {"exif": exif} if fmt in ("JPEG", "WEBP", "PNG", "TIFF") else {}
        (im.convert("P") if fmt == "GIF" else im).save(buf, fmt, **extra)
        out[fmt] = buf.getvalue()
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        i = rng.randrange(len(b)) if b else 0
        if op < 0.45 and b:  # flip bytes
            for k in range(i, min(len(b), i + rng.randint(1, 4))):
                b[k] = rng.randrange(256)
        elif op < 0.6 and b:  # an interesting value (lengths, counts, tags)
            v = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])
            b[i : i + 4] = v.to_bytes(4, rng.choice(["big", "little"]))
        elif op < 0.75:  # truncate
            del b[i:]
        elif op < 0.9 and b:  # duplicate a slice
            j = rng.randrange(i, len(b) + 1)
            b[j:j] = b[i : i + rng.randint(1, 64)]
        else:  # delete a slice
            del b[i : i + rng.randint(1, 64)]
    return bytes(b)


def mutants(seed: int) -> Iterator[tuple[str, bytes]]:
    """An endless, reproducible stream of (format, mutated file)."""
    rng = random.Random(seed)
    starts = seeds()
    while True:
        fmt = rng.choice(FORMATS)
        yield fmt, _mutate(starts[fmt], rng)


def fuzz(paths: list[Callable[[bytes], object]], seed: int, seconds: float) -> tuple[int, list]:
    """Feed mutants to each path for about `seconds`; (files tried, escapes as (format,
    exception, file bytes)). An ImagionError is a path's answer for a bad file, not an escape."""
    import time

    from imagion.errors import ImagionError

    escapes: list = []
    tried = 0
    end = time.monotonic() + seconds
    for fmt, data in mutants(seed):
        if time.monotonic() > end:
            break
        tried += 1
        for path in paths:
            try:
                path(data)
            except ImagionError:
                pass
            except Exception as exc:
                escapes.append((fmt, repr(exc), data))
    return tried, escapes
