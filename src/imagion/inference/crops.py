"""Image-specific advice that needs no label statistics: the best crop of a photo for Instagram's
formats (1:1, 4:5 portrait, 1.91:1 landscape), scored by the model.

Each format is tried at the start, centre and end of the photo's long side. A crop is reported
only when the model's calibrated probability that it beats the uncropped photo is at least
MIN_WIN, with the gain in score and that probability, nothing stronger, and only when it
keeps the photo's main subject (imagion.inference.subject: faces, else the salient pixels). A
model without a calibrated probability gives no crop advice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imagion.files import unused_path, writable_folder
from imagion.images import decoded, open_image, square
from imagion.inference.engine import Engine
from imagion.inference.subject import Subject
from imagion.scores import JSON_DIGITS, score_text

FORMATS = {"1:1": 1.0, "4:5": 4 / 5, "1.91:1": 1.91}
MIN_WIN = 0.6
LIKELY = f"≥ {MIN_WIN:.0%}"  # how the CLI and the help say MIN_WIN


@dataclass
class CropAdvice:
    format: str
    position: str  # start, centre or end of the long side
    box: tuple[float, float, float, float]  # left, top, right, bottom as fractions of the photo
    score: float
    original_score: float
    p_better: float

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "position": self.position,
            "box": list(self.box),
            "score": round(self.score, JSON_DIGITS),
            "original_score": round(self.original_score, JSON_DIGITS),
            "p_better": round(self.p_better, 3),
        }

    @property
    def text(self) -> str:
        return (
            f"Cropping to {self.format} ({self.position}) scores {score_text(self.score)} instead of "
            f"{score_text(self.original_score)}; P(it does better) = {self.p_better:.0%}."
        )


def candidate_boxes(width: int, height: int) -> list[tuple[str, str, tuple[int, int, int, int]]]:
    """(format, position, box) of the largest crop of each format, at three positions."""
    out = []
    for name, ratio in FORMATS.items():
        w, h = (
            (width, round(width / ratio))
            if width / height < ratio
            else (round(height * ratio), height)
        )
        w, h = min(w, width), min(h, height)
        if (w, h) == (width, height):
            continue  # the photo already has this shape
        slack_x, slack_y = width - w, height - h
        for pos, f in (("start", 0.0), ("centre", 0.5), ("end", 1.0)):
            x, y = round(slack_x * f), round(slack_y * f)
            out.append((name, pos if (slack_x or slack_y) else "centre", (x, y, x + w, y + h)))
    return out


def best_crop(
    engine: Engine, source: Path | bytes, name: str | None = None, work_px: int = 640
) -> tuple[CropAdvice | None, Image.Image | None]:
    """The crop most likely to beat the photo and the crop itself, when that probability is at
    least MIN_WIN; (None, None) otherwise (always for a model without calibrated probability)."""
    if engine.calibration.pair_scale is None:
        return None, None
    im = open_image(source, name)
    try:
        rgb = decoded(im, work_px, name or str(source))
        rgb.thumbnail((work_px * 2, work_px * 2))
    finally:
        im.close()
    boxes = candidate_boxes(*rgb.size)
    if not boxes:
        return None, None
    size = engine.preprocess.size
    views = [square(rgb, size)] + [square(rgb.crop(box), size) for _, _, box in boxes]
    raw, _ = engine.forward(np.stack([np.asarray(v, dtype=np.uint8) for v in views]), False)
    scores = engine.calibration.score(raw)
    p = [engine.calibration.win_probability(float(r), float(raw[0])) or 0.5 for r in raw[1:]]
    likely = [k for k in np.argsort(p)[::-1] if p[k] >= MIN_WIN]
    subject = Subject(rgb) if likely else None
    keeps = [int(k) for k in likely if subject is not None and subject.kept_by(boxes[k][2])]
    if not keeps:
        return None, None
    k = keeps[0]
    fmt, pos, box = boxes[k]
    w, h = rgb.size
    frac = (round(box[0] / w, 3), round(box[1] / h, 3), round(box[2] / w, 3), round(box[3] / h, 3))
    return CropAdvice(
        fmt, pos, frac, float(scores[k + 1]), float(scores[0]), float(p[k])
    ), rgb.crop(box)


def write_crop(
    folder: Path, path: Path, advice: CropAdvice | None, crop: Image.Image | None
) -> Path | None:
    """Save the best crop as `<name>.crop-<format>.jpg` in `folder` (created if needed); a name
    that is taken (an earlier run's crop, or `A/IMG.png` and `B/IMG.jpg` in one run) gets ` (2)`."""
    if crop is None:
        return None
    writable_folder(folder, "`crops`")
    tag = (advice.format if advice else "best").replace(":", "x")
    dest = unused_path(folder, f"{path.stem}.crop-{tag}.jpg")
    crop.save(dest, format="JPEG", quality=92)
    return dest
