"""Generated bursts for the grouping tests and benches: varied synthetic source photos (gradients,
textures, shapes; no dataset photos), each with near-duplicate variants as a camera or an editor
makes them (a crop, an exposure change, a low JPEG quality, a small rotation, a horizontal shift)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

VARIANTS = ("crop", "exposure", "jpeg", "rotate", "shift")
SIZE = (480, 360)


def source_image(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """One synthetic photo: a two-colour gradient in a random direction, a texture (stripes or
    checks at a random frequency and angle) and 4–9 shapes in random colours."""
    rng = np.random.default_rng(10_000 + seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1) / 2
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = a * (1 - t[..., None]) + b * t[..., None]
    freq, theta = rng.uniform(4, 30), rng.uniform(0, np.pi)
    u = (np.cos(theta) * xx + np.sin(theta) * yy) / w * freq * 2 * np.pi
    if rng.random() < 0.5:
        texture = np.sin(u)
    else:
        v = (-np.sin(theta) * xx + np.cos(theta) * yy) / w * freq * 2 * np.pi
        texture = np.sign(np.sin(u) * np.sin(v))
    img += texture[..., None] * rng.uniform(15, 60) * rng.choice([-1, 1], 3)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(4, 10))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.1, 0.9) * w, rng.uniform(-0.1, 0.9) * h
        x1, y1 = x0 + rng.uniform(0.1, 0.5) * w, y0 + rng.uniform(0.1, 0.5) * h
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            pts = [(rng.uniform(0, w), rng.uniform(0, h)) for _ in range(int(rng.integers(3, 6)))]
            draw.polygon(pts, fill=colour)
    return im


def variant(im: Image.Image, kind: str, seed: int) -> tuple[Image.Image, int]:
    """(the variant, the JPEG quality to save it at)."""
    rng = np.random.default_rng(seed)
    w, h = im.size
    if kind == "crop":  # a reframing: 85–92% of each side, anywhere
        f = rng.uniform(0.85, 0.92)
        cw, ch = int(w * f), int(h * f)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return im.crop((x, y, x + cw, y + ch)), 90
    if kind == "exposure":  # ± about a stop
        gain = rng.choice([0.7, 1.35])
        arr = np.clip(np.asarray(im, dtype=np.float64) * gain, 0, 255).astype(np.uint8)
        return Image.fromarray(arr), 90
    if kind == "jpeg":  # a re-saved copy at low quality
        return im, int(rng.integers(25, 45))
    if kind == "rotate":  # a tilted hand: 2–5 degrees, the corners cropped away
        angle = rng.uniform(2, 5) * rng.choice([-1, 1])
        r = im.rotate(angle, resample=Image.Resampling.BILINEAR)
        m = int(0.08 * min(w, h))
        return r.crop((m, m, w - m, h - m)), 90
    if kind == "shift":  # the camera moved sideways: the frame shifts by 6–10% of its width
        dx = int(w * rng.uniform(0.06, 0.10))
        box = (dx, 0, w, h) if rng.random() < 0.5 else (0, 0, w - dx, h)
        return im.crop(box), 90
    raise ValueError(kind)


def write_bursts(
    folder: Path,
    sources: int = 10,
    variants: tuple[str, ...] = VARIANTS,
    first: int = 0,
    size: tuple[int, int] = SIZE,
) -> dict[str, int]:
    """`sources` × len(`variants`) JPEGs in `folder`, named `s03_crop.jpg`; returns
    {file name: source index}."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for s in range(first, first + sources):
        src = source_image(s, size)
        for k, kind in enumerate(variants):
            im, quality = variant(src, kind, seed=s * 100 + k)
            name = f"s{s:03d}_{kind}.jpg"
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality)
            (folder / name).write_bytes(buf.getvalue())
            truth[name] = s
    return truth
