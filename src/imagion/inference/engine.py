"""Inference engines for scoring files: ONNX Runtime on the CPU (fast start, fast kernels) or PyTorch.

A checkpoint is exported once to ONNX (BatchNorm folded; for EfficientNet-Lite0 the pooled
features come out too, for offline labels) and cached under the cache folder, keyed by the
checkpoint's SHA-256; later runs never import PyTorch. Which runtime and device a `device` choice
means is `imagion.settings.choose_backend`'s rule (ONNX Runtime on the CPU, or on CUDA with
onnxruntime-gpu; PyTorch when only it sees the GPU, when onnxruntime is missing, or when the model
cannot be exported).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagion import __version__
from imagion.errors import ImagionError
from imagion.images import sha256_file
from imagion.labels.suggestions import LabelStats, load_bundled_stats
from imagion.models.imagenet import ImageNetLabeler
from imagion.models.registry import model_spec
from imagion.models.transforms import Calibration, Preprocess
from imagion.settings import (
    bundled_export_path,
    choose_backend,
    default_cache_dir,
    is_bundled_model,
    model_path,
    onnx_options,
    onnxruntime_module,
    pick_device,
)

log = logging.getLogger(__name__)  # warnings reach stderr; the CLI shows them as notes

EXPORT_VERSION = 3  # 2: meta.json carries the batch size; 3: calibration source, label stats


# (uint8 batch N×S×S×3, want pooled features) → (raw outputs N, features N×F or None)
Forward = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Engine:
    """What scoring needs: preprocessing, calibration, and a batch → (raw, features) function."""

    path: Path
    arch: str
    preprocess: Preprocess
    calibration: Calibration
    forward: Forward
    labeler: ImageNetLabeler | None = None  # when the features are EfficientNet-Lite0's
    backend: str = "torch"
    batch_size: int = 8
    label_stats: LabelStats | None = None  # behind the suggestions
    device: str = "cpu"  # where `forward` runs: cpu or cuda


def _onnxruntime() -> Any | None:
    return onnxruntime_module()


def export_onnx(ckpt: Path, folder: Path) -> None:
    """Export a checkpoint (fused for inference) to `folder`: model.onnx, meta.json, imagenet.npz."""
    import torch

    from imagion.models.checkpoints import load_checkpoint

    loaded = load_checkpoint(ckpt)
    model = loaded.model.eval().to(memory_format=torch.contiguous_format)
    with_features = model_spec(loaded.arch).imagenet_labels

    class Both(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.m.features(x)
            return self.m.head(f).reshape(-1), f

    net = Both() if with_features else model
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".export-"))
    try:
        _export_into(tmp, folder, net, loaded, ckpt, with_features)
    finally:  # a failed export (a full disk) leaves no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)


def _export_into(
    tmp: Path, folder: Path, net: Any, loaded: Any, ckpt: Path, with_features: bool
) -> None:
    from imagion.models.onnx_export import export_module

    model = loaded.model
    size = loaded.preprocess.size
    names = ["raw", "features"] if with_features else ["raw"]
    export_module(net, tmp / "model.onnx", size, names)
    meta = {
        "arch": loaded.arch,
        "preprocess": loaded.preprocess.to_dict(),
        "batch_size": model_spec(loaded.arch).batch_accelerated,
        "calibration": loaded.calibration.to_dict(),
        "features": with_features,
        "checkpoint": ckpt.name,  # its name only: an export is shipped and cached elsewhere
        "checkpoint_sha256": sha256_file(ckpt),
        "imagion_version": __version__,
        "export_version": EXPORT_VERSION,
        "label_stats": loaded.card.training.label_stats if loaded.card.training else None,
    }
    if with_features:
        lab = ImageNetLabeler.from_model(model)
        # float16: half the size, and the labels' 10% threshold does not feel it
        np.savez(tmp / "imagenet.npz", weight=lab.weight.astype(np.float16), bias=lab.bias)
    (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    for name in ("model.onnx", "imagenet.npz", "meta.json"):  # meta.json last: readers wait for it
        if (tmp / name).exists():
            os.replace(tmp / name, folder / name)


def _session(ort: Any, folder: Path, device: str = "cpu") -> Any:
    opts = onnx_options(ort)
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(folder / "model.onnx"), opts, providers=providers)


def shipped_export(ckpt: Path) -> Path | None:
    """The ONNX export shipped with the package for the bundled model (so that `rank`, `compare`,
    `serve` and offline labels need no PyTorch), when it was made from this very checkpoint."""
    folder = bundled_export_path()
    if not is_bundled_model(ckpt) or not (folder / "meta.json").is_file():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return folder if meta.get("checkpoint_sha256") == sha256_file(ckpt) else None


def _onnx_engine(ort: Any, ckpt: Path, cache: Path, device: str = "cpu") -> Engine:
    shipped = shipped_export(ckpt)
    folder = shipped or cache / "onnx" / f"{sha256_file(ckpt)[:32]}-v{EXPORT_VERSION}"
    if not (folder / "meta.json").is_file() or not (folder / "model.onnx").is_file():
        export_onnx(ckpt, folder)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        session = _session(ort, folder, device)
    except Exception:  # a damaged export (a truncated file): exported again, once, in the cache
        if shipped is None:  # never delete what the package shipped
            shutil.rmtree(folder, ignore_errors=True)
        folder = cache / "onnx" / f"{sha256_file(ckpt)[:32]}-v{EXPORT_VERSION}"
        export_onnx(ckpt, folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        session = _session(ort, folder, device)
    pre = Preprocess.from_dict(meta["preprocess"])
    cal = Calibration.from_dict(meta["calibration"])
    labeler = None
    if meta["features"]:
        npz = np.load(folder / "imagenet.npz")
        labeler = ImageNetLabeler(npz["weight"], npz["bias"])

    def forward(batch: np.ndarray, want_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        outs = session.run(None, {"x": pre.normalize_np(batch)})
        return outs[0].reshape(-1), (outs[1] if want_features and len(outs) > 1 else None)

    arch = meta["arch"]
    batch = int(meta["batch_size"])
    stats = _stats(meta.get("label_stats"))
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        log.warning(  # onnxruntime-gpu without its CUDA libraries falls back to the CPU
            "ONNX Runtime could not start its CUDA provider (are CUDA 12 and cuDNN 9 "
            "installed?); scoring on the CPU."
        )
        device = "cpu"
    return Engine(ckpt, arch, pre, cal, forward, labeler, "onnxruntime", batch, stats, device)


def _torch_engine(ckpt: Path, device: str) -> Engine:
    from imagion.inference.torch_forward import forward_uint8
    from imagion.models.checkpoints import load_checkpoint

    dev = pick_device(device)
    loaded = load_checkpoint(ckpt, dev)
    spec = model_spec(loaded.arch)
    labeler = None
    if spec.imagenet_labels:
        labeler = ImageNetLabeler.from_model(loaded.model)

    def forward(batch: np.ndarray, want_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if not want_features or labeler is None:
            return forward_uint8(loaded, batch, dev), None
        feats: list = []
        raw = forward_uint8(loaded, batch, dev, feats)
        return raw, feats[0].numpy()

    batch = spec.batch_cpu if dev.type == "cpu" else spec.batch_accelerated
    stats = _stats(loaded.card.training.label_stats if loaded.card.training else None)
    return Engine(
        ckpt,
        loaded.arch,
        loaded.preprocess,
        loaded.calibration,
        forward,
        labeler,
        "torch",
        batch,
        stats,
        dev.type,
    )


def _stats(data: object) -> LabelStats | None:
    """Label statistics stored with a personal model (train --stats), if any."""
    if not isinstance(data, dict):
        return None
    try:
        return LabelStats.from_dict(data)
    except (KeyError, TypeError):
        return None


def open_engine(
    model: str | Path | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    stats: Path | None = None,
) -> Engine:
    """The engine for a checkpoint (default: the bundled model), with the label statistics for
    suggestions: `stats`, else the ones stored with the model, else the bundled ones."""
    ckpt = model_path(model)
    user_stats = None
    if stats is not None:
        user_stats = LabelStats.load_checked(stats)
    engine = _open(ckpt, device, cache_dir)
    if user_stats is not None:
        engine.label_stats = user_stats
    elif engine.label_stats is None:
        engine.label_stats = load_bundled_stats()
    return engine


def _open(ckpt: Path, device: str, cache_dir: Path | None) -> Engine:
    ort = _onnxruntime()
    backend = choose_backend(device, onnx=ort is not None)
    if ort is not None and backend.runtime == "onnxruntime":
        try:
            return _onnx_engine(ort, ckpt, cache_dir or default_cache_dir(), backend.device)
        except ImagionError:
            raise
        except Exception as exc:  # an export or runtime problem: PyTorch still works
            log.warning(
                "ONNX Runtime unavailable for %s (%s: %s); using PyTorch, which is slower. If "
                "the cache %s is not writable, point IMAGION_CACHE at a folder that is.",
                ckpt.name,
                type(exc).__name__,
                exc,
                cache_dir or default_cache_dir(),
            )
    return _torch_engine(ckpt, device)
