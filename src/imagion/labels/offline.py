"""Offline labels of catalog images: EfficientNet-Lite0's ImageNet classifier on the pooled
features of the bundled model's engine (ONNX Runtime: no PyTorch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagion.errors import ModelError
from imagion.inference.decode import run_files
from imagion.inference.engine import open_engine
from imagion.models.cache_entries import read_entry, save_entry
from imagion.models.registry import feature_key, model_spec
from imagion.problems import collapse
from imagion.progress import Progress
from imagion.settings import default_cache_dir


def local_labels(
    paths: list[str],
    shas: list[str],
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[dict[int, list], list[str]]:
    """EfficientNet-Lite0's ImageNet labels of each image, from the bundled model's engine (ONNX
    Runtime: no PyTorch needed), its pooled features cached per image as `train` caches them."""
    engine = open_engine(None, "cpu", cache_dir=cache_dir)
    if engine.labeler is None:
        raise ModelError("offline labels need the bundled EfficientNet-Lite0 model.")
    pre = engine.preprocess
    folder = (cache_dir or default_cache_dir()) / "features" / feature_key(engine.arch, pre)
    feats: dict[int, np.ndarray] = {}
    dim = model_spec(engine.arch).feature_dim or 0  # EfficientNet-Lite0's: never None here
    for i, sha in enumerate(shas):
        arr = read_entry(folder / f"{sha}.npy", (dim,), paths[i])
        if arr is not None:
            feats[i] = arr
    todo = [i for i in range(len(paths)) if i not in feats]
    problems: list[str] = []
    if todo:
        done, _, computed, problems = run_files(
            [Path(paths[i]) for i in todo],
            pre.size,
            lambda batch: engine.forward(batch, True),
            engine.batch_size,
            progress,
        )
        where = {str(Path(paths[i])): i for i in todo}
        for p, row in zip(done, computed if computed is not None else [], strict=False):
            i = where[str(p)]
            feats[i] = row
            save_entry(folder / f"{shas[i]}.npy", np.asarray(row, dtype=np.float32))
    idx = sorted(feats)
    labels = engine.labeler.from_features(np.stack([feats[i] for i in idx])) if idx else []
    return {int(i): lab for i, lab in zip(idx, labels, strict=True)}, collapse(problems)
