"""Crop advice keeps the main subject: faces when OpenCV finds them, else the salient pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import ROOT
from PIL import Image

from imagion.inference import crops, subject
from imagion.inference.crops import best_crop, candidate_boxes
from imagion.inference.engine import Engine
from imagion.models.transforms import Calibration, Preprocess


def _collage(width: int = 400, height: int = 200) -> Image.Image:
    """A flat grey picture with a busy subject in its left quarter (a person on a collage)."""
    rng = np.random.default_rng(0)
    arr = np.full((height, width, 3), 128, dtype=np.uint8)
    arr[40:160, 10:90] = rng.integers(0, 255, size=(120, 80, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def test_a_crop_that_cuts_out_the_salient_subject_is_not_kept():
    im = _collage()
    s = subject.Subject(im)
    boxes = {(f, p): b for f, p, b in candidate_boxes(*im.size)}
    assert s.kept_by(boxes[("1:1", "start")])
    assert not s.kept_by(boxes[("1:1", "end")]) and not s.kept_by(boxes[("1:1", "centre")])


def test_faces_come_first(monkeypatch):
    monkeypatch.setattr(subject, "faces", lambda rgb: [(300, 50, 360, 110)])
    s = subject.Subject(_collage())
    boxes = {(f, p): b for f, p, b in candidate_boxes(400, 200)}
    assert s.kept_by(boxes[("1:1", "end")]) and not s.kept_by(boxes[("1:1", "start")])


def test_the_astronauts_face_is_found_and_kept():
    im = Image.open(ROOT / "data/samples/astronaut.jpg").convert("RGB")
    found = subject.faces(im)
    if found is None:  # the light install: no OpenCV, saliency only
        return
    assert len(found) == 1
    s = subject.Subject(im)
    kept = {(f, p) for f, p, b in candidate_boxes(*im.size) if s.kept_by(b)}
    assert ("1.91:1", "centre") not in kept and ("4:5", "centre") in kept


def _engine(prefer: dict[int, float]) -> Engine:
    """A fake model: `prefer` maps a view's index (0: the whole photo, k: candidate k − 1) to its
    raw output; every other view gets 0."""
    calls = iter([np.array([prefer.get(i, 0.0) for i in range(10)], dtype=np.float32)])

    def forward(batch: np.ndarray, want_features: bool):
        raw = next(calls)[: len(batch)]
        return raw, None

    cal = Calibration(list(np.linspace(-1, 1, 101)), pair_scale=4.0, pair_source="test")
    return Engine(
        Path("fake.pt"),
        "fake",
        Preprocess(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        cal,
        forward,
    )


def test_best_crop_skips_a_likely_crop_that_loses_the_subject(tmp_path):
    im = _collage()
    path = tmp_path / "collage.png"
    im.save(path)
    boxes = candidate_boxes(*im.size)
    end = next(i for i, (f, p, _) in enumerate(boxes) if (f, p) == ("1:1", "end"))
    start = next(i for i, (f, p, _) in enumerate(boxes) if (f, p) == ("1:1", "start"))
    # the model likes the crop without the subject best, and the one with it second
    advice, crop = best_crop(_engine({end + 1: 0.9, start + 1: 0.5}), path)
    assert advice is not None and (advice.format, advice.position) == ("1:1", "start")
    # only the crop without the subject is likely to do better: no advice at all
    advice, crop = best_crop(_engine({end + 1: 0.9}), path)
    assert advice is None and crop is None
    assert crops.MIN_WIN == 0.6
