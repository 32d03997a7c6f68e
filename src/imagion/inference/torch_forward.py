"""Batched inference: image files (decoded in parallel with the model) and catalog posts (cached)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from imagion.errors import ImagionError
from imagion.images import load_square
from imagion.models.caches import frozen_features, load_images
from imagion.models.checkpoints import LoadedModel
from imagion.progress import Progress, in_stage
from imagion.settings import cpu_threads, default_cache_dir


@torch.inference_mode()
def forward_uint8(
    loaded: LoadedModel, batch: np.ndarray, device: torch.device, features: list | None = None
) -> np.ndarray:
    """Raw outputs of a uint8 batch; with `features`, also append the pooled backbone features."""
    x = loaded.preprocess.normalize(torch.from_numpy(batch).to(device))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        if features is None:
            return loaded.model(x).float().reshape(-1).cpu().numpy()
        f = loaded.model.features(x)
        features.append(f.float().cpu())
        return loaded.model.head(f).float().reshape(-1).cpu().numpy()


def predict_catalog(
    loaded: LoadedModel,
    images: list[str],
    shas: list[str],
    device: torch.device,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Raw outputs for catalog posts, each image decoded (and featurized) once and cached.

    Returns (raw, ok mask, mean brightness per image, problems).
    """
    cache = cache_dir or default_cache_dir()
    raw = np.full(len(images), np.nan)
    if loaded.model.frozen:
        feats = frozen_features(
            loaded.model,
            images,
            shas,
            cache,
            device,
            progress=in_stage(progress, "features"),
        )
        ok, problems = feats.ok, feats.problems
        idx = np.flatnonzero(ok)
        with torch.inference_mode():
            raw[idx] = loaded.model.head(feats.x[idx].to(device)).float().reshape(-1).cpu().numpy()
        return raw, ok, _brightness(images, ok), problems
    arr, ok, problems = load_images(
        images,
        shas,
        loaded.preprocess.size,
        cache,
        progress=in_stage(progress, "decoding"),
    )
    brightness = arr.reshape(len(arr), -1).mean(axis=1) / 255.0 if len(arr) else np.array([])
    idx = np.flatnonzero(ok)
    for s in range(0, len(idx), 64):
        raw[idx[s : s + 64]] = forward_uint8(loaded, arr[idx[s : s + 64]], device)
    return raw, ok, brightness, problems


BRIGHTNESS_SIZE = 32  # mean brightness for the "brighter wins" baseline: a small decode suffices


def _brightness(images: list[str], ok: np.ndarray) -> np.ndarray:
    """Mean brightness (0–1) of each readable image, from a fast reduced-size decode."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> float:
        if not ok[i]:
            return float("nan")
        try:
            return float(load_square(images[i], BRIGHTNESS_SIZE).mean() / 255.0)
        except ImagionError:
            return float("nan")

    with ThreadPoolExecutor(cpu_threads()) as pool:
        return np.fromiter(pool.map(one, range(len(images))), dtype=np.float64, count=len(images))
