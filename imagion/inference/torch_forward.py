"""Batched inference: image files (decoded in parallel with the model) and catalog posts (cached)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from imagion.models.checkpoints import LoadedModel


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
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Raw outputs for catalog posts, each image decoded (and featurized) once and cached.

    Returns (raw, ok mask, mean brightness per image, problems).
    """
    from imagion.models.caches import compute_features, load_images
    from imagion.settings import default_cache_dir

    cache = cache_dir or default_cache_dir()
    arr, ok, problems = load_images(
        images,
        shas,
        loaded.preprocess.size,
        cache,
        progress=(lambda d, t: progress("decoding", d, t)) if progress else None,
    )
    brightness = arr.reshape(len(arr), -1).mean(axis=1) / 255.0 if len(arr) else np.array([])
    raw = np.full(len(images), np.nan)
    idx = np.flatnonzero(ok)
    if loaded.model.frozen:
        feats = compute_features(
            loaded.model,
            arr[idx],
            [shas[i] for i in idx],
            cache,
            device,
            progress=(lambda d, t: progress("features", d, t)) if progress else None,
        )
        with torch.inference_mode():
            raw[idx] = loaded.model.head(feats.to(device)).float().reshape(-1).cpu().numpy()
    else:
        for s in range(0, len(idx), 64):
            raw[idx[s : s + 64]] = forward_uint8(loaded, arr[idx[s : s + 64]], device)
    return raw, ok, brightness, problems
