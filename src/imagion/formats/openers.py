"""The photo formats a phone or a camera writes, registered in one place.

HEIC/HEIF come from `pillow-heif` (libheif; a burst or Live Photo opens at its primary image),
AVIF from Pillow itself (Pillow 11.2+ bundles libavif), camera RAW from `rawpy` (LibRaw; see
`imagion.formats.raw`). All three are part of the light install; when one is missing, the
file it would open gets one line saying which package to install."""

from __future__ import annotations

import functools
import logging

from PIL import Image

logger = logging.getLogger("imagion")

# Pillow format names that come from an opener registered here, beside Pillow's own formats.
EXTRA_FORMATS = ("HEIF", "AVIF")
HEIF_SUFFIXES = frozenset({".heic", ".heics", ".heif", ".heifs", ".hif"})
AVIF_SUFFIXES = frozenset({".avif", ".avifs"})
# Camera RAW, read through LibRaw (not a Pillow format: opened by extension, never sniffed as
# TIFF, or a DNG would open as its small IFD0 thumbnail).
RAW_SUFFIXES = frozenset(
    {
        ".dng",  # Adobe, Leica, Pentax, Ricoh, phones (Apple ProRAW, Android)
        ".cr2",
        ".cr3",
        ".crw",  # Canon
        ".nef",
        ".nrw",  # Nikon
        ".arw",
        ".srf",
        ".sr2",  # Sony
        ".raf",  # Fujifilm
        ".orf",  # Olympus / OM System
        ".rw2",
        ".rwl",  # Panasonic, Leica
        ".pef",  # Pentax
        ".srw",  # Samsung
        ".3fr",
        ".fff",  # Hasselblad
        ".iiq",  # Phase One
        ".erf",  # Epson
        ".kdc",
        ".dcr",  # Kodak
        ".mrw",  # Minolta
        ".mos",  # Leaf
        ".x3f",  # Sigma
    }
)
# A file named as camera RAW that holds a JPEG or a PNG (renamed, or a camera's JPEG copy with the
# wrong extension) is opened as what it is: no RAW format starts with these bytes.
PILLOW_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# the package that brings each kind, named when it is missing
PACKAGES = {"HEIF": "pillow-heif", "AVIF": "Pillow 11.2 or later (with AVIF)", "RAW": "rawpy"}


@functools.cache
def register_openers() -> tuple[str, ...]:
    """Register the openers of the formats beyond Pillow's own; returns the ones available."""
    try:
        import pillow_heif
    except ImportError:
        logger.debug("pillow-heif is not installed: HEIC/HEIF files cannot be opened")
    else:
        # HEIF only: AVIF is Pillow's own (pillow-heif 1.x no longer decodes it)
        pillow_heif.register_heif_opener(thumbnails=False)
    Image.init()
    return tuple(f for f in EXTRA_FORMATS if f in Image.OPEN)


def kind_of(suffix: str) -> str | None:
    """ "HEIF", "AVIF" or "RAW" for a file extension (any case) of a format registered here."""
    s = suffix.lower()
    if s in HEIF_SUFFIXES:
        return "HEIF"
    if s in AVIF_SUFFIXES:
        return "AVIF"
    if s in RAW_SUFFIXES:
        return "RAW"
    return None


def raw_inside(suffix: str, head: bytes) -> bool:
    """Whether a file with this extension whose first bytes are `head` is camera RAW."""
    return kind_of(suffix) == "RAW" and not head.startswith(PILLOW_MAGIC)


@functools.cache
def raw_available() -> bool:
    try:
        import rawpy  # noqa: F401
    except ImportError:
        return False
    return True


def missing_opener(suffix: str) -> str | None:
    """What to install to open files with this extension, when its opener is missing here."""
    kind = kind_of(suffix)
    if kind is None:
        return None
    available = (kind == "RAW" and raw_available()) or kind in register_openers()
    if available:
        return None
    return PACKAGES[kind]
