"""Where a photo's main subject is, so that crop advice never cuts it out.

The subject is the faces in the photo when OpenCV is installed (`pip install -e '.[faces]'`:
its Haar cascade, offline) and finds any; otherwise the most salient tenth of the photo by the
spectral-residual saliency of Hou & Zhang (CVPR 2007), computed with numpy on a 64-px copy. A
crop keeps the subject when it holds 90% of every face, or else 85% of the salient pixels. A photo without a clear subject (flat, or noise) loses the salient pixels as it loses
area, so a large cut of it is never advised."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

FACE_KEEP = 0.9  # share of each face a crop must hold
SALIENT_KEEP = 0.85  # share of the salient pixels a crop must hold
SALIENT = 0.9  # pixels above this quantile of saliency are "the subject"
SIDE = 64

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels


@functools.cache
def _face_detector() -> Any | None:
    """OpenCV's frontal-face Haar cascade, or None (OpenCV missing, or a build without it:
    OpenCV 5 moved the cascades out of its main modules)."""
    try:
        import cv2
    except ImportError:
        return None
    classifier = getattr(cv2, "CascadeClassifier", None)
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if classifier is None or folder is None:
        return None
    detector = classifier(folder + "haarcascade_frontalface_default.xml")
    return None if detector.empty() else detector


def faces(rgb: Image.Image) -> list[Box] | None:
    """Frontal faces (pixel boxes), or None when no detector is installed."""
    detector = _face_detector()
    if detector is None:
        return None
    gray = np.asarray(rgb.convert("L"))
    least = max(12, min(gray.shape) // 20)
    found = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(least, least))
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]


def _blur(a: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean over a k×k window of the last two axes (edges padded by reflection): a box filter,
    one axis after the other."""
    r = k // 2
    h, w = a.shape[-2:]
    p = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(r, r), (0, 0)], mode="reflect")
    rows = p[..., :h, :].copy()
    for d in range(1, k):
        rows += p[..., d : d + h, :]
    p = np.pad(rows, [(0, 0)] * (a.ndim - 2) + [(0, 0), (r, r)], mode="reflect")
    out = p[..., :w].copy()
    for d in range(1, k):
        out += p[..., d : d + w]
    return out / (k * k)


def saliency(rgb: Image.Image) -> np.ndarray:
    """Spectral-residual saliency on a copy whose long side is SIDE px (sums to 1)."""
    w, h = rgb.size
    scale = SIDE / max(w, h)
    small = rgb.convert("L").resize((max(4, round(w * scale)), max(4, round(h * scale))))
    return _spectral_residual(np.asarray(small, dtype=np.float64))


def saliency_of(grey: np.ndarray, side: int = SIDE) -> np.ndarray:
    """`saliency` of grey images given as an array (…×H×W, 0–255; a batch at once), on a copy
    shrunk by whole blocks to about `side` px (each map sums to 1)."""
    h, w = grey.shape[-2:]
    f = max(1, round(max(h, w) / side))
    hh, ww = max(1, h // f), max(1, w // f)
    g = np.asarray(grey)[..., : hh * f, : ww * f]  # each block's mean, whole rows added first
    # (3.5× the speed of short sums first; no matrix product: BLAS threads would fight the model)
    rows = g.reshape(*g.shape[:-2], hh, f, ww * f).sum(axis=-2, dtype=np.float64)
    small = rows.reshape(*g.shape[:-2], hh, ww, f).sum(axis=-1) / (f * f)
    return _spectral_residual(small)


def _spectral_residual(g: np.ndarray) -> np.ndarray:
    """Spectral-residual saliency of the last two axes (each map sums to 1)."""
    spectrum = np.fft.fft2(g)
    log_amp = np.log(np.abs(spectrum) + 1e-9)
    residual = log_amp - _blur(log_amp)
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    sal = _blur(_blur(sal, 5), 5)
    total = sal.sum(axis=(-2, -1), keepdims=True)
    flat = np.full_like(sal, 1.0 / (sal.shape[-1] * sal.shape[-2]))
    return np.where(total > 0, sal / np.where(total > 0, total, 1.0), flat)


def _inside(face: Box, crop: Box) -> float:
    fx0, fy0, fx1, fy1 = face
    cx0, cy0, cx1, cy1 = crop
    w = max(0, min(fx1, cx1) - max(fx0, cx0))
    h = max(0, min(fy1, cy1) - max(fy0, cy0))
    area = max(1, (fx1 - fx0) * (fy1 - fy0))
    return w * h / area


class Subject:
    """The subject of one photo, found once, asked about several crops."""

    def __init__(self, rgb: Image.Image) -> None:
        self.size = rgb.size
        self.faces = faces(rgb) or []
        self.salient: np.ndarray | None = None
        if not self.faces:
            sal = saliency(rgb)
            self.salient = sal >= np.quantile(sal, SALIENT)

    def kept_by(self, crop: Box) -> bool:
        """Whether `crop` holds the subject: FACE_KEEP of every face, else SALIENT_KEEP of the
        salient pixels."""
        if self.faces:
            return all(_inside(f, crop) >= FACE_KEEP for f in self.faces)
        assert self.salient is not None
        w, h = self.size
        rows, cols = self.salient.shape
        x0, x1 = int(crop[0] / w * cols), int(np.ceil(crop[2] / w * cols))
        y0, y1 = int(crop[1] / h * rows), int(np.ceil(crop[3] / h * rows))
        total = int(self.salient.sum())
        return total == 0 or self.salient[y0:y1, x0:x1].sum() >= SALIENT_KEEP * total
