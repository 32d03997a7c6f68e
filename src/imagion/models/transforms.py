"""Torch-free descriptions shared by the PyTorch and ONNX Runtime paths: preprocessing, calibration."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imagion.models.expected_score import ScoreModel, is_number

if TYPE_CHECKING:
    import torch

MIN_SIZE, MAX_SIZE = 16, 1024  # input sizes a checkpoint may ask for
EFFNET_FEATURES = 1280  # pooled features of every EfficientNet-Lite variant

# Tone maps a checkpoint can ask for, applied to every image it sees (training and inference):
# * "none": the pixels as they are;
# * "crawl": y = clip(2x − 255, 0, 255), the tone map the instagram-2017 crawl saved its images
#   with (Inception-style [-1, 1] scaling clipped to [0, 1]); a model that learned from such
#   pixels sees an ordinary photo the same way (images that already carry it are marked so);
# * "equalize": per-image histogram equalization of the luminance, which maps both kinds of
#   images towards one tonal distribution.
TONES = ("none", "crawl", "equalize")
_CRAWL_LUT = np.clip(2 * np.arange(256) - 255, 0, 255).astype(np.uint8)


def apply_tone(x_uint8: np.ndarray, tone: str) -> np.ndarray:
    """A tone map on uint8 images (…×H×W×3); returns a new array (the input is untouched)."""
    if tone == "none":
        return x_uint8
    if tone == "crawl":
        return _CRAWL_LUT[x_uint8]
    if tone == "equalize":
        return _equalize(x_uint8)
    raise ValueError(f"unknown tone map {tone!r} (known: {', '.join(TONES)})")


def _equalize(x: np.ndarray) -> np.ndarray:
    """Histogram equalization of each image's luminance (all three channels moved by one map,
    so colours keep their hue)."""
    flat = x.reshape(-1, *x.shape[-3:])
    out = np.empty_like(flat)
    for k, im in enumerate(flat):
        luma = (im[..., 0] * 0.299 + im[..., 1] * 0.587 + im[..., 2] * 0.114).astype(np.uint8)
        hist = np.bincount(luma.ravel(), minlength=256)
        cdf = np.cumsum(hist).astype(np.float64)
        lo = cdf[np.flatnonzero(hist)[0]] if hist.any() else 0.0
        span = max(cdf[-1] - lo, 1.0)
        lut = np.clip(np.round((cdf - lo) / span * 255.0), 0, 255)
        gain = (lut[luma] + 1.0) / (luma.astype(np.float64) + 1.0)
        out[k] = np.clip(im * gain[..., None], 0, 255).astype(np.uint8)
    return out.reshape(x.shape)


def tone_augment(x_uint8: np.ndarray, seed: int) -> np.ndarray:
    """A random tone change of one image, reproducible from `seed`: shadows lifted by a random
    amount (from none to undoing the crawl's tone map, y → (y + 255)/2), then a random gamma
    and contrast. Used to train on tone-varied copies of the training images."""
    rng = np.random.default_rng(seed)
    lift = rng.uniform(0.0, 0.5)
    gamma = float(np.exp(rng.uniform(-0.4, 0.4)))
    contrast = rng.uniform(0.8, 1.2)
    v = np.arange(256, dtype=np.float64) / 255.0
    v = v + (1.0 - v) * lift
    v = v**gamma
    v = 0.5 + (v - 0.5) * contrast
    lut = np.clip(np.round(v * 255.0), 0, 255).astype(np.uint8)
    return lut[x_uint8]


@dataclass(frozen=True)
class Preprocess:
    """How pixels become the model's input: centre square crop, resize, (x/255 − mean) / std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    tone: str = "none"  # one of TONES, applied before normalizing

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
        tone = d.get("tone", "none")
        if tone not in TONES:
            raise ValueError(f"preprocess tone {tone!r} is not one of {', '.join(TONES)}")
        return cls(size=size, mean=mean, std=std, tone=tone)

    def normalize_np(self, x_uint8: np.ndarray) -> np.ndarray:
        """N×H×W×3 uint8 → N×3×H×W float32, normalized (for ONNX Runtime)."""
        scale = 1.0 / (255.0 * np.asarray(self.std, dtype=np.float32))
        shift = np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        x = apply_tone(x_uint8, self.tone).astype(np.float32) * scale - shift
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """N×H×W×3 uint8 → N×3×H×W float, normalized, channels_last."""
        import torch

        if self.tone != "none":
            toned = apply_tone(x_uint8.cpu().numpy(), self.tone)
            x_uint8 = torch.from_numpy(toned).to(x_uint8.device)
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


QUANTILES = 101  # raw_quantiles: the 0th to 100th percentile of the training outputs
PRIOR_PAIRS = 20.0  # pseudo-pairs at 50/50 that a handful of held-out pairs cannot outvote


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def fit_pair_scale(d: np.ndarray, y: np.ndarray, posts: int | None = None) -> float:
    """The scale s of P(a beats b) = σ(s · (raw_a − raw_b)) fitted on held-out pairs (`d` raw
    differences, `y` 1 where a won), shrunk towards 0 by PRIOR_PAIRS pseudo-pairs that are a
    coin toss: four lucky pairs do not make a 100% model. Pairs that share posts are not
    independent (45 pairs come from 10 posts), so with `posts` (how many distinct posts the pairs
    come from) the evidence counts as posts / 2 pairs, the most disjoint pairs they can form. A model that cannot separate
    pairs gets s = 0, i.e. 50% for every pair."""
    d, y = np.asarray(d, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not len(d):
        raise ValueError("no pairs to calibrate on")
    grid = np.r_[0.0, np.exp(np.linspace(-8, 6, 281)) / max(float(np.std(d)), 1e-12)]
    z = np.outer(grid, d)
    right, wrong = np.logaddexp(0, -z), np.logaddexp(0, z)
    weight = min(1.0, posts / 2 / len(d)) if posts else 1.0
    real = -(right * y + wrong * (1 - y)).sum(axis=1) * weight
    coin = -(0.5 * right + 0.5 * wrong).mean(axis=1) * PRIOR_PAIRS
    return float(grid[int(np.argmax(real + coin))])


class Calibration:
    """Raw model outputs → their percentile among the training posts' outputs → the shown 0–10
    score: the expected score with an 80% interval (`expected`, fitted on held-out posts) or,
    without held-out predictions, the percentile itself (said: no interval); and, when held-out
    pairs were available, → P(a beats b) = σ(pair_scale · (raw_a − raw_b)).

    `pair_scale` is None when nothing held out was there to fit it on: no probability is shown
    then (a scale fitted on training pairs is overconfident). `pair_source` says where it came
    from; `pair_metrics` holds the out-of-sample figures measured there."""

    def __init__(
        self,
        quantiles: list[float],
        pair_scale: float | None = None,
        pair_source: str | None = None,
        pair_metrics: dict[str, Any] | None = None,
        expected: ScoreModel | None = None,
    ) -> None:
        self.q = np.asarray(quantiles, dtype=np.float64)
        self.expected = expected  # None: no held-out predictions, no interval (said)
        self.missing = False  # the checkpoint had none (last.pt): scores are raw outputs
        self.pair_scale = pair_scale
        self.pair_source = pair_source if pair_scale is not None else None
        self.pair_metrics = pair_metrics or {}

    @classmethod
    def from_dict(cls, d: object) -> Calibration:
        """From a checkpoint's dict, checked: ValueError names what is wrong. Checkpoints of
        imagion 0.1 fitted the pair scale on training pairs: it is dropped."""
        if not isinstance(d, dict):
            raise ValueError("calibration is not a mapping")
        q = d.get("raw_quantiles")
        if not isinstance(q, list) or len(q) < 2 or not all(is_number(x) for x in q):
            raise ValueError("calibration has no raw_quantiles (a list of at least 2 numbers)")
        arr = np.asarray(q, dtype=np.float64)
        if not np.isfinite(arr).all() or np.any(np.diff(arr) < 0):
            raise ValueError("calibration quantiles are not finite and increasing")
        source = d.get("pair_source")
        scale = d.get("pair_scale") if source else None
        if scale is not None and (not is_number(scale) or not math.isfinite(scale) or scale < 0):
            raise ValueError(f"calibration pair_scale {scale!r} is not a number ≥ 0")
        metrics = d.get("pair_metrics") if isinstance(d.get("pair_metrics"), dict) else None
        exp = d.get("expected_score")
        expected = None if exp is None else ScoreModel.from_dict(exp)
        cal = cls(arr.tolist(), None if scale is None else float(scale), source, metrics, expected)
        cal.missing = bool(d.get("missing", False))
        return cal

    @classmethod
    def absent(cls) -> Calibration:
        """What a checkpoint without a calibration gets (last.pt, written for --resume): the
        raw output shown on the 0–10 scale as it is, marked so that it is said."""
        cal = cls(list(np.linspace(0, 10, QUANTILES)))
        cal.missing = True
        return cal

    @classmethod
    def fit(
        cls,
        raw: np.ndarray,
        held_out_pairs: tuple[np.ndarray, np.ndarray] | None = None,
        source: str | None = None,
        posts: int | None = None,
    ) -> Calibration:
        """Quantiles from `raw` (training outputs); the pair scale only from held-out pairs."""
        q = np.quantile(np.asarray(raw, dtype=np.float64), np.linspace(0, 1, QUANTILES))
        q = np.maximum.accumulate(q + np.arange(QUANTILES) * 1e-9)  # strictly increasing
        if held_out_pairs is None or not len(held_out_pairs[0]):
            return cls(q.tolist())
        d, y = held_out_pairs
        return cls(q.tolist(), fit_pair_scale(d, y, posts), source or f"held-out pairs ({len(d)})")

    def position(self, raw: np.ndarray) -> np.ndarray:
        """Where raw outputs fall among the training posts' outputs: 0–1."""
        steps = np.linspace(0, 1, len(self.q))  # any length read from a card, not only 101
        return np.interp(np.asarray(raw, dtype=np.float64), self.q, steps)

    def place(self, raw: np.ndarray) -> np.ndarray:
        """`position`, not held at 0 and 1: beyond the lowest and highest training outputs it
        goes on at the median quantile step's rate (so distinct raw outputs keep distinct
        places, in order, for the shown score)."""
        r = np.asarray(raw, dtype=np.float64)
        rate = 0.01 / max(float(np.median(np.diff(self.q))), 1e-12)
        u = self.position(r)
        return np.where(
            r > self.q[-1],
            1.0 + (r - self.q[-1]) * rate,
            np.where(r < self.q[0], (r - self.q[0]) * rate, u),
        )

    def score(self, raw: np.ndarray) -> np.ndarray:
        """The shown 0–10 score: the expected score when held-out predictions calibrated it,
        else the percentile among the training posts."""
        if self.expected is not None:
            return self.expected.predict(self.place(raw))[0]
        return 10.0 * self.position(raw)

    def interval(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The 80% interval of the actual score (10th, 90th percentile), or None (no held-out
        predictions: NO_INTERVAL says so)."""
        if self.expected is None:
            return None
        _, low, high = self.expected.predict(self.place(raw))
        return low, high

    def win_probability(self, raw_a: float, raw_b: float) -> float | None:
        """P(a gets more likes than b), or None when the model has no held-out calibration."""
        if self.pair_scale is None:
            return None
        return float(sigmoid(self.pair_scale * (raw_a - raw_b)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "expected score by percentile of training outputs"
            if self.expected
            else "percentile of training outputs",
            "score_range": [0.0, 10.0],
            "raw_quantiles": [float(v) for v in self.q],
            "pair_scale": self.pair_scale,
            "pair_source": self.pair_source,
            "pair_metrics": self.pair_metrics,
            "expected_score": self.expected.to_dict() if self.expected else None,
        } | ({"missing": True} if self.missing else {})
