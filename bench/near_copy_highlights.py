"""Clipped highlights told apart beside a darker copy (inference/highlights.py): how often the
comparison flags a brightened copy beside its original, and how often it flags an original beside
the copies people make of it — on real photos (issue #34; figures in docs/quality.md).

For each photo: copies brightened 1.7×, 1.3×, 1.5×, 2× (PIL's gain) and +1 EV in linear light
(each compared with the original: they should be flagged), and 28 other copies compared the other
way (the original beside each; it should never be flagged): dimmed to 95, 90, 85, 70 and 40%;
dimmed to 90 and 85% and re-saved at JPEG quality 75; dimmed and sharpened (unsharp mask, or PIL's
SHARPEN); dimmed and vignetted; vignetted; a 90% crop dimmed; a 95% crop; blurred; re-saved at
quality 40; halved; and the second review's: dimmed to 85% with film grain (5 levels, 2 px; 10
levels, 2.5 px) or per-pixel noise (8 levels); dimmed to 90% and blurred (radius short side / 300
and / 150) or halved (quality 85); dimmed to 85% and shifted 8 or 12 px, or turned 0.5°; and the
third review's: dimmed to 85% with a thin dark frame line, a white border painted over the edges,
or a white text watermark. Also the
brightened copy beside the other copies (any darker copy serves), and the blurred, re-saved,
halved, vignetted, cropped and dimmed copies beside the copy darkened to 40% (none should be
flagged). Copies are saved at JPEG quality 95 unless said, decoded as rank decodes them (the
224-px model input).

The thresholds were chosen on all 120 ig-celeb12 photos and 300 instagram-2017 posts (a random
sample, seed 0; the noise floor, the darker block's own clipping and least brightness, and 3
blocks after the reviews' cases); `--held-out` takes 400 other instagram-2017 posts (seed 1) and no ig-celeb12
photo, to check them.

Usage: python bench/near_copy_highlights.py [--datasets ../shared/datasets] [--held-out]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _datasets import add_datasets_option  # noqa: E402 (bench/, the script's folder)

from imagion.images import load_square  # noqa: E402
from imagion.inference.highlights import flagged  # noqa: E402
from imagion.inference.quality import measures_and_thumbnails  # noqa: E402


def jpeg(im: Image.Image, q: int = 95) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def dim(im: Image.Image, g: float) -> Image.Image:
    return ImageEnhance.Brightness(im).enhance(g)


def vignette(im: Image.Image) -> Image.Image:
    w, h = im.size
    y, x = np.mgrid[0:h, 0:w]
    r2 = ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2
    a = np.asarray(im, np.float32) * np.clip(1 - 0.35 * r2, 0.4, 1)[..., None]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def grain(im: Image.Image, sigma: float, size: float) -> Image.Image:
    """Film grain (size 1: per-pixel noise) of `sigma` levels, the same on every channel."""
    rng = np.random.default_rng(0)
    w, h = im.size
    small = rng.normal(0, 1, (int(h / size) + 1, int(w / size) + 1)).astype(np.float32)
    noise = np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BICUBIC))
    a = np.asarray(im, np.float32) + sigma * (noise / noise.std())[..., None]
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def shift(im: Image.Image, dx: int, dy: int) -> Image.Image:
    w, h = im.size
    return im.crop((dx, dy, w, h)).resize((w, h), Image.Resampling.LANCZOS)


def rotate(im: Image.Image, degrees: float) -> Image.Image:
    return crop(im.rotate(degrees, Image.Resampling.BICUBIC), 0.93)


def linear_exposure(im: Image.Image, stops: float) -> Image.Image:
    """Exposure changed in linear light (a camera's or a raw editor's +1 EV), back to sRGB."""
    a = np.asarray(im, np.float32) / 255
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4) * 2.0**stops
    lin = np.clip(lin, 0, 1)
    out = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return Image.fromarray(np.clip(np.rint(out * 255), 0, 255).astype(np.uint8))


def framed(im: Image.Image) -> Image.Image:
    """A thin dark frame line drawn 2% inside the edges."""
    out, (w, h) = im.copy(), im.size
    inset = int(0.02 * w)
    ImageDraw.Draw(out).rectangle(
        (inset, inset, w - inset, h - inset), outline=(40, 40, 40), width=2
    )
    return out


def white_border(im: Image.Image) -> Image.Image:
    """A white border painted over 3% of each edge (the size unchanged)."""
    out, (w, h) = im.copy(), im.size
    e = int(0.03 * w)
    draw = ImageDraw.Draw(out)
    for box in ((0, 0, w, e), (0, h - e, w, h), (0, 0, e, h), (w - e, 0, w, h)):
        draw.rectangle(box, fill=(255, 255, 255))
    return out


def watermarked(im: Image.Image) -> Image.Image:
    """A white text watermark at the bottom right, 6% of the height."""
    out, (w, h) = im.copy(), im.size
    font = ImageFont.load_default(size=max(8, int(0.06 * h)))
    ImageDraw.Draw(out).text(
        (int(0.55 * w), int(0.88 * h)), "© imagion", fill=(255, 255, 255), font=font
    )
    return out


def crop(im: Image.Image, f: float) -> Image.Image:
    w, h = im.size
    cw, ch = int(w * f), int(h * f)
    box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
    return im.crop(box).resize((w, h), Image.Resampling.LANCZOS)


KINDS: dict[str, Callable[[Image.Image], bytes]] = {
    "bright17": lambda im: jpeg(dim(im, 1.7)),
    "bright13": lambda im: jpeg(dim(im, 1.3)),
    "bright15": lambda im: jpeg(dim(im, 1.5)),
    "bright20": lambda im: jpeg(dim(im, 2.0)),
    "bright_ev1": lambda im: jpeg(linear_exposure(im, 1.0)),
    "dim95": lambda im: jpeg(dim(im, 0.95)),
    "dim90": lambda im: jpeg(dim(im, 0.9)),
    "dim85": lambda im: jpeg(dim(im, 0.85)),
    "dim70": lambda im: jpeg(dim(im, 0.7)),
    "dim40": lambda im: jpeg(dim(im, 0.4)),
    "dim90q75": lambda im: jpeg(dim(im, 0.9), 75),
    "dim85q75": lambda im: jpeg(dim(im, 0.85), 75),
    "dim90sharp": lambda im: jpeg(dim(im, 0.9).filter(ImageFilter.UnsharpMask(2, 150, 3)), 90),
    "dim85sharp": lambda im: jpeg(dim(im, 0.85).filter(ImageFilter.SHARPEN), 90),
    "dim90vig": lambda im: jpeg(vignette(dim(im, 0.9)), 90),
    "vig": lambda im: jpeg(vignette(im), 90),
    "crop90dim": lambda im: jpeg(dim(crop(im, 0.9), 0.9)),
    "crop95": lambda im: jpeg(crop(im, 0.95)),
    "blur": lambda im: jpeg(im.filter(ImageFilter.GaussianBlur(min(im.size) / 300))),
    "q40": lambda im: jpeg(im, 40),
    "half": lambda im: jpeg(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)),
    "dim85grain5": lambda im: jpeg(grain(dim(im, 0.85), 5, 2.0)),
    "dim85grain10": lambda im: jpeg(grain(dim(im, 0.85), 10, 2.5)),
    "dim85noise8": lambda im: jpeg(grain(dim(im, 0.85), 8, 1.0)),
    "dim90blur": lambda im: jpeg(dim(im, 0.9).filter(ImageFilter.GaussianBlur(min(im.size) / 300))),
    "dim90blur2": lambda im: jpeg(
        dim(im, 0.9).filter(ImageFilter.GaussianBlur(min(im.size) / 150))
    ),
    "dim90half": lambda im: jpeg(dim(im, 0.9).resize((im.width // 2, im.height // 2)), 85),
    "dim85shift8": lambda im: jpeg(dim(shift(im, 8, 5), 0.85)),
    "dim85shift12": lambda im: jpeg(dim(shift(im, 12, 7), 0.85)),
    "dim85rot05": lambda im: jpeg(dim(rotate(im, 0.5), 0.85)),
    "dim85line": lambda im: jpeg(framed(dim(im, 0.85))),
    "dim85border": lambda im: jpeg(white_border(dim(im, 0.85))),
    "dim85watermark": lambda im: jpeg(watermarked(dim(im, 0.85))),
}


def photos(datasets: Path, held_out: bool) -> tuple[list[Path], list[Path]]:
    """(ig-celeb12 photos, instagram-2017 posts) as the thresholds were chosen on, or held out."""
    celeb = sorted((datasets / "ig-celeb12").glob("*/*.jpg"))
    insta = sorted((datasets / "instagram-2017" / "images").rglob("*.jpg"))
    random.seed(0)
    chosen_on = random.sample(insta, 300)
    if not held_out:
        return celeb, chosen_on
    taken = set(chosen_on)
    random.seed(1)
    return [], random.sample([p for p in insta if p not in taken], 400)


def thumbs_of(path: Path) -> dict[str, np.ndarray]:
    """The thumbnail of the photo and of each of its copies, as rank's pass takes them."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    squares = [load_square(path, 224)]
    squares += [load_square(make(rgb), 224, name="copy.jpg") for make in KINDS.values()]
    _, thumbs = measures_and_thumbnails(np.stack(squares))
    return dict(zip(["orig", *KINDS], thumbs, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    add_datasets_option(ap)
    ap.add_argument("--held-out", action="store_true")
    args = ap.parse_args()
    sets = zip(("ig-celeb12", "instagram-2017"), photos(args.datasets, args.held_out), strict=True)
    for name, paths in sets:
        if not paths:
            continue
        t = [thumbs_of(p) for p in paths]
        n = len(t)

        def count(a: str, b: str) -> int:
            return sum(flagged(x[a], x[b]) is not None for x in t)  # noqa: B023

        print(f"{name}, {n} photos{' (held out)' if args.held_out else ''}:")
        for kind in ("bright17", "bright13", "bright15", "bright20", "bright_ev1"):
            print(f"  {kind} beside the original: flagged {count(kind, 'orig')}/{n}")
        others = [k for k in KINDS if not k.startswith("bright")]
        wrong = {k: count("orig", k) for k in others}
        print(
            f"  the original beside each other copy: flagged {sum(wrong.values())}/{n * len(wrong)}"
        )
        print("   ", ", ".join(f"{k} {v}" for k, v in wrong.items()))
        beside = {k: count("bright17", k) for k in ("dim70", "dim40", "blur", "q40", "half")}
        print(
            "  bright17 beside other darker copies:",
            ", ".join(f"{k} {v}/{n}" for k, v in beside.items()),
        )
        copies = ("blur", "q40", "half", "vig", "crop95", "dim90")
        wrong = {k: count(k, "dim40") for k in copies}
        print(f"  other copies beside dim40: flagged {sum(wrong.values())}/{n * len(copies)}")


if __name__ == "__main__":
    main()
