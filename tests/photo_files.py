"""Test helpers: photos as phones and cameras write them, generated offline — HEIC, AVIF, a DNG
with (or without) an embedded preview, and a Display P3 ICC profile written from its primaries."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image

# Display P3 (DCI-P3 primaries, D65 white, the sRGB curve) adapted to D50 as ICC profiles store
# it (Bradford), the colorants Apple's own profile carries.
P3_COLORANTS = {
    b"rXYZ": (0.515102, 0.241182, -0.001050),
    b"gXYZ": (0.291965, 0.692236, 0.041882),
    b"bXYZ": (0.157153, 0.066583, 0.784122),
}
D50 = (0.964203, 1.0, 0.824905)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(v: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)


def _srgb_curve(n: int = 1024) -> bytes:
    x = np.linspace(0, 1, n)
    y = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return b"curv\0\0\0\0" + struct.pack(">I", n) + np.round(y * 65535).astype(">u2").tobytes()


def _desc(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_))
        + ascii_
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67
    )


def icc_profile(colorants: dict[bytes, tuple[float, float, float]], name: str) -> bytes:
    """An ICC v2 RGB display profile (matrix + sRGB curve) with these D50 colorants."""
    curve = _srgb_curve()
    tags = [(b"desc", _desc(name)), (b"wtpt", _xyz(D50))]
    tags += [(sig, _xyz(v)) for sig, v in colorants.items()]
    tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    table_end = 128 + 4 + 12 * len(tags)
    offset, entries, data = table_end, b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        entries += sig + struct.pack(">II", offset, len(body))
        data += body
        offset += len(body)
    header = bytearray(128)
    header[0:4] = struct.pack(">I", offset)
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:16], header[16:20], header[20:24] = b"mntr", b"RGB ", b"XYZ "
    header[24:36] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    header[36:40] = b"acsp"
    header[68:80] = b"".join(_s15(c) for c in D50)
    return bytes(header) + struct.pack(">I", len(tags)) + entries + data


def display_p3() -> bytes:
    return icc_profile(P3_COLORANTS, "Display P3 (imagion test)")


def vivid(size: int = 256, seed: int = 0) -> Image.Image:
    """A saturated photo-like picture: colour fields, gradients and noise (where P3 and sRGB
    pixel values differ the most)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    arr = np.stack([np.clip(1.6 * x, 0, 1), np.clip(1.4 * (1 - y), 0, 1), (x * y) ** 0.5], -1)
    arr = arr * 235 + rng.normal(0, 6, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def write_dng(
    path: Path,
    preview: Image.Image | None,
    raw_size: tuple[int, int] = (96, 64),
    orientation: int = 1,
) -> Path:
    """A minimal DNG LibRaw opens: a Bayer (RGGB) 16-bit mosaic, with `preview` (8-bit RGB) as
    IFD0's preview image and the raw data in a SubIFD, as cameras write them; without a
    preview, the raw data is IFD0."""
    import tifffile

    w, h = raw_size
    rng = np.random.default_rng(0)
    raw = (rng.integers(0, 1000, size=(h, w)) + 200).astype(np.uint16)
    dng = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Imagion Test", True),  # UniqueCameraModel
        (271, "s", 0, "Imagion", True),
        (272, "s", 0, "Test", True),
        (274, "H", 1, orientation, True),
    ]
    cfa = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50717, "H", 1, 4095, True),  # WhiteLevel
        (50721, "2i", 9, [1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1], True),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as tif:
        if preview is None:
            tif.write(raw, photometric=32803, subfiletype=0, extratags=dng + cfa)
        else:
            rgb = np.asarray(preview.convert("RGB"))
            tif.write(rgb, photometric="rgb", subfiletype=1, subifds=1, extratags=dng)
            tif.write(raw, photometric=32803, subfiletype=0, extratags=cfa)
    return path


def photo(brightness: float, size: int = 400, seed: int = 0) -> Image.Image:
    """A photo-like picture of mean brightness `brightness` (0..1)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = brightness * 255 + 40 * np.stack([x - 0.5, y - 0.5, 0.5 - x], -1)
    arr = base + rng.normal(0, 10, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def write_heic(path: Path, im: Image.Image, quality: int = 90) -> Path:
    import pillow_heif

    path.parent.mkdir(parents=True, exist_ok=True)
    pillow_heif.from_pillow(im).save(path, quality=quality)
    return path
