"""Torch-free descriptions shared by the PyTorch and ONNX Runtime paths: preprocessing, calibration."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

MIN_SIZE, MAX_SIZE = 16, 1024  # input sizes a checkpoint may ask for


@dataclass(frozen=True)
class Preprocess:
    """How pixels become the model's input: centre square crop, resize, (x/255 − mean) / std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"crop": "center-square", "resize": "bilinear"} | asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> Preprocess:
        """From a checkpoint's dict, checked: ValueError names what is wrong."""
        if not isinstance(d, dict):
            raise ValueError("preprocess is not a mapping")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(
                f"input size {size!r} is not a whole number from {MIN_SIZE} to {MAX_SIZE}"
            )
        mean, std = _triple(d.get("mean"), "mean"), _triple(d.get("std"), "std")
        if min(std) <= 0:
            raise ValueError("preprocess std must be positive")
        return cls(size=size, mean=mean, std=std)

    def normalize_np(self, x_uint8: np.ndarray) -> np.ndarray:
        """N×H×W×3 uint8 → N×3×H×W float32, normalized (for ONNX Runtime)."""
        scale = 1.0 / (255.0 * np.asarray(self.std, dtype=np.float32))
        shift = np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        x = x_uint8.astype(np.float32) * scale - shift
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """N×H×W×3 uint8 → N×3×H×W float, normalized, channels_last."""
        import torch

        x = x_uint8.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def _triple(value: object, name: str) -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"preprocess {name} is not 3 numbers")
    out = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"preprocess {name} is not finite")
    return out  # type: ignore[return-value]


class Calibration:
    """Raw model outputs → 0–10 by the percentile of the training posts' outputs."""

    @classmethod
    def from_dict(cls, d: object) -> Calibration:
        """From a checkpoint's dict, checked: ValueError names what is wrong."""
        if not isinstance(d, dict):
            raise ValueError("calibration is not a mapping")
        q = d.get("raw_quantiles")
        if not isinstance(q, list) or len(q) < 2:
            raise ValueError("calibration has no raw_quantiles (at least 2 numbers)")
        arr = np.asarray(q, dtype=np.float64)
        if not np.isfinite(arr).all() or np.any(np.diff(arr) < 0):
            raise ValueError("calibration quantiles are not finite and increasing")
        scale = d.get("pair_scale", 1.0)
        if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"calibration pair_scale {scale!r} is not a positive number")
        return cls(arr.tolist(), float(scale))

    def __init__(self, quantiles: list[float], pair_scale: float = 1.0) -> None:
        self.q = np.asarray(quantiles, dtype=np.float64)
        self.pair_scale = pair_scale

    @classmethod
    def fit(
        cls, raw: np.ndarray, pairs: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Calibration:
        q = np.quantile(np.asarray(raw, dtype=np.float64), np.linspace(0, 1, 101))
        q = np.maximum.accumulate(q + np.arange(101) * 1e-9)  # strictly increasing
        scale = 1.0
        if pairs is not None and len(pairs[0]):
            d, y = pairs  # raw differences, and 1 where the first post won
            grid = np.exp(np.linspace(-6, 6, 241))
            z = np.outer(grid, d)
            ll = -(np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y)).mean(axis=1)
            scale = float(grid[int(np.argmax(ll))])
        return cls(q.tolist(), scale)

    def score(self, raw: np.ndarray) -> np.ndarray:
        return 10.0 * np.interp(np.asarray(raw, dtype=np.float64), self.q, np.linspace(0, 1, 101))

    def win_probability(self, raw_a: float, raw_b: float) -> float:
        return float(1.0 / (1.0 + np.exp(-self.pair_scale * (raw_a - raw_b))))

    def to_dict(self) -> dict:
        return {
            "method": "percentile of training outputs",
            "score_range": [0.0, 10.0],
            "raw_quantiles": [float(v) for v in self.q],
            "pair_scale": self.pair_scale,
        }
