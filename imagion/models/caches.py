"""The decoded-image cache and the frozen-feature cache, keyed by image SHA-256."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from imagion.errors import ImagionError
from imagion.files import atomic_path
from imagion.images import load_square
from imagion.models.networks import ImagionModel
from imagion.models.registry import model_spec
from imagion.settings import cpu_threads


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def load_images(
    paths: list[str],
    shas: list[str],
    size: int,
    cache_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode each image once into a size×size×3 uint8 array cached by SHA-256 and size.

    Returns (images N×size×size×3, ok mask, problems); images that fail are zero and not ok.
    """
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    problems: list[str] = []
    folder = cache_dir / "images" / str(size)

    def one(i: int) -> str | None:
        cached = folder / f"{shas[i]}.npy"
        if cached.is_file():
            try:
                arr = np.load(cached)
                if arr.shape == (size, size, 3):
                    out[i] = arr
                    return None
            except (OSError, ValueError):
                pass  # a damaged cache entry is simply rebuilt
        try:
            arr = load_square(paths[i], size)
        except ImagionError as exc:
            return str(exc)
        out[i] = arr
        _atomic_save(cached, arr)
        return None

    with ThreadPoolExecutor(cpu_threads()) as pool:
        for i, problem in enumerate(pool.map(one, range(len(paths)))):
            if problem is None:
                ok[i] = True
            else:
                problems.append(problem)
            if progress:
                progress(i + 1, len(paths))
    return out, ok, problems


@torch.inference_mode()
def compute_features(
    model: ImagionModel,
    images: np.ndarray,
    shas: list[str],
    cache_dir: Path,
    device: torch.device,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Pooled backbone features of a frozen model, computed once per image and cached."""
    folder = cache_dir / "features" / f"{model.arch}-{model.preprocess.size}"
    dim = model_spec(model.arch).feature_dim
    if dim is None:
        raise ImagionError(f"{model.arch} has no pooled features to cache.")
    feats = torch.zeros(len(shas), dim)
    todo = []
    for i, sha in enumerate(shas):
        f = folder / f"{sha}.npy"
        try:
            feats[i] = torch.from_numpy(np.load(f))
        except (OSError, ValueError):  # not cached yet (or a damaged entry): compute it
            todo.append(i)
    was_training = model.training
    model.eval()
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        x = model.preprocess.normalize(torch.from_numpy(images[idx]).to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            batch = model.features(x).float().cpu()
        for j, i in enumerate(idx):
            feats[i] = batch[j]
            _atomic_save(folder / f"{shas[i]}.npy", batch[j].numpy())
        if progress:
            progress(min(start + batch_size, len(todo)), len(todo))
    model.train(was_training)
    return feats
