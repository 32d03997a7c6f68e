"""Colour as the camera meant it: pixels with an embedded ICC profile (Display P3, Adobe RGB,
any other) converted to sRGB, the colour space the model was trained on (Pillow's ImageCms)."""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageCms

logger = logging.getLogger("imagion")

# the profile colour space each Pillow mode can be converted from
_SPACES = {"RGB": "RGB", "CMYK": "CMYK", "L": "GRAY"}


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=32)
def _profile(icc: bytes) -> tuple[ImageCms.ImageCmsProfile, str, bool] | None:
    """(profile, its colour space, whether it is sRGB already) or None when unreadable."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        described = (profile.profile.profile_description or "").lower()
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
        logger.debug("unreadable ICC profile (%s): colours used as they are", exc)
        return None
    return profile, space, "srgb" in described.replace(" ", "")


@functools.lru_cache(maxsize=32)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    known = _profile(icc)
    if known is None:
        return None
    profile, space, is_srgb = known
    if is_srgb or _SPACES.get(mode) != space:
        return None
    try:
        return ImageCms.buildTransform(profile, _srgb(), mode, "RGB")
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        logger.debug("ICC profile not usable (%s): colours used as they are", exc)
        return None


def profile_space(icc: bytes | None) -> str | None:
    """The colour space ("RGB", "CMYK", "GRAY") of an ICC profile, None when none or unreadable."""
    known = _profile(icc) if icc else None
    return known[1] if known else None


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """`im` (RGB, CMYK or L, its pixels in the colour space of `icc`) as sRGB in RGB mode; without
    a profile, with an sRGB or unreadable one, the pixels are taken as sRGB already."""
    transform = _transform(icc, im.mode) if icc else None
    if transform is None:
        return im if im.mode == "RGB" else im.convert("RGB")
    try:
        return ImageCms.applyTransform(im, transform) or im
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        logger.debug("ICC conversion failed (%s): colours used as they are", exc)
        return im if im.mode == "RGB" else im.convert("RGB")
