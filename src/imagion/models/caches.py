"""The decoded-image cache and the frozen-feature cache, keyed by image SHA-256."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagion.errors import ImagionError, ModelError
from imagion.files import remove_stale_temporaries
from imagion.images import load_square
from imagion.models.cache_entries import read_entry, save_entry
from imagion.models.networks import ImagionModel, fuse_for_inference
from imagion.models.onnx_export import export_module
from imagion.models.registry import feature_key, model_spec
from imagion.models.transforms import tone_augment
from imagion.problems import collapse
from imagion.progress import Progress, logged
from imagion.settings import cpu_threads, onnx_options


def load_images(
    paths: list[str],
    shas: list[str],
    size: int,
    cache_dir: Path,
    progress: Progress | None = None,
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
        arr = read_entry(cached, (size, size, 3), paths[i])
        if arr is not None:
            out[i] = arr
            return None
        try:
            arr = load_square(paths[i], size)
        except ImagionError as exc:
            return str(exc)
        out[i] = arr
        save_entry(cached, arr)
        return None

    report = logged(progress, "decoding")
    with ThreadPoolExecutor(cpu_threads()) as pool:
        for i, problem in enumerate(pool.map(one, range(len(paths)))):
            if problem is None:
                ok[i] = True
            else:
                problems.append(problem)
            report(i + 1, len(paths))
    return out, ok, collapse(problems)


def feature_folder(model: ImagionModel, cache_dir: Path, augment: int = 0) -> Path:
    """Where a frozen backbone's features of each image live: one folder per architecture, input
    size and tone map (and per tone-augmented copy)."""
    return cache_dir / "features" / feature_key(model.arch, model.preprocess, augment)


@dataclass
class Features:
    """Pooled features of a frozen backbone, one row per image (zero where `ok` is False)."""

    x: torch.Tensor
    ok: np.ndarray
    problems: list[str]


def _augment_seed(sha: str, copy: int) -> int:
    return int(sha[:12], 16) * 31 + copy


def frozen_features(
    model: ImagionModel,
    paths: list[str],
    shas: list[str],
    cache_dir: Path,
    device: torch.device,
    progress: Progress | None = None,
    augment: int = 0,
    batch_size: int = 64,
) -> Features:
    """Features of every image for a frozen backbone, computed once and cached per image by its
    SHA-256, so an interrupted run resumes where it stopped. Images are decoded in threads while
    the backbone runs (ONNX Runtime on the CPU, about 4× PyTorch there). `augment` k > 0: the
    features of the k-th tone-augmented copy of each image (`tone_augment`)."""
    folder = feature_folder(model, cache_dir, augment)
    if folder.is_dir():
        remove_stale_temporaries(folder)  # left by a run killed mid-write
    dim = model_spec(model.arch).feature_dim
    if dim is None:
        raise ModelError(f"{model.arch} has no pooled features to cache.")
    feats = np.zeros((len(shas), dim), dtype=np.float32)
    ok = np.zeros(len(shas), dtype=bool)
    todo = []
    for i, sha in enumerate(shas):
        arr = read_entry(folder / f"{sha}.npy", (dim,), paths[i])
        if arr is not None:
            feats[i], ok[i] = arr, True
        else:
            todo.append(i)
    problems: list[str] = []
    if todo:
        forward = backbone_forward(model, device, cache_dir)
        size = model.preprocess.size

        def decode(i: int) -> np.ndarray | str:
            try:
                arr = load_square(paths[i], size)
            except ImagionError as exc:
                return str(exc)
            return tone_augment(arr, _augment_seed(shas[i], augment)) if augment else arr

        chunks = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
        done = 0
        report = logged(progress, "features")
        with ThreadPoolExecutor(cpu_threads()) as pool:
            pending = [pool.submit(decode, i) for i in chunks[0]]
            for k, chunk in enumerate(chunks):
                decoded = [f.result() for f in pending]
                if k + 1 < len(chunks):  # decode the next batch while this one runs
                    pending = [pool.submit(decode, i) for i in chunks[k + 1]]
                good = [
                    (i, a) for i, a in zip(chunk, decoded, strict=True) if not isinstance(a, str)
                ]
                problems += [a for a in decoded if isinstance(a, str)]
                if good:
                    out = forward(np.stack([a for _, a in good]))
                    for (i, _), row in zip(good, out, strict=True):
                        feats[i], ok[i] = row, True
                        save_entry(folder / f"{shas[i]}.npy", row)
                done += len(chunk)
                report(done, len(todo))
    return Features(torch.from_numpy(feats), ok, collapse(problems))


BACKBONE_EXPORT_VERSION = 1


def backbone_forward(
    model: ImagionModel, device: torch.device, cache_dir: Path
) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 N×S×S×3 → pooled features N×F (float32), the model's preprocessing (tone map
    included) applied: ONNX Runtime on the CPU (the backbone exported once, cached), else
    PyTorch."""
    if device.type == "cpu":
        try:
            return _onnx_backbone(model, cache_dir)
        except Exception as exc:  # no onnxruntime, or an export problem: PyTorch still works
            import logging

            logging.getLogger(__name__).warning(
                "features on PyTorch, not ONNX Runtime (%s: %s)", type(exc).__name__, exc
            )
    pre = model.preprocess

    @torch.inference_mode()
    def run(batch: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        x = pre.normalize(torch.from_numpy(batch).to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            f = model.features(x).float().cpu().numpy()
        model.train(was_training)
        return f

    return run


def _export_backbone(model: ImagionModel, folder: Path) -> Path:
    """The backbone as `folder`/model.onnx, written through a temporary file of this run (one
    that a killed run left behind is removed once it is old)."""
    import copy
    import os
    import tempfile

    size = model.preprocess.size
    net = fuse_for_inference(copy.deepcopy(model).eval())

    class Backbone(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.features(x)

    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder, pattern=".model-*.onnx")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".model-", suffix=".onnx")
    os.close(fd)
    try:
        export_module(Backbone(), Path(tmp), size, ["features"])
        os.replace(tmp, folder / "model.onnx")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return folder / "model.onnx"


def _onnx_backbone(model: ImagionModel, cache_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    import logging
    import tempfile

    import onnxruntime as ort

    size = model.preprocess.size
    folder = cache_dir / "onnx" / f"backbone-{model.arch}-{size}-v{BACKBONE_EXPORT_VERSION}"
    path = folder / "model.onnx"
    opts = onnx_options(ort)
    if not path.is_file():
        try:
            path = _export_backbone(model, folder)
        except OSError as exc:  # a read-only or full cache: exported for this run only
            logging.getLogger(__name__).warning(
                "cache folder %s cannot be written (%s); the backbone is exported for this "
                "run only.",
                folder,
                exc.strerror or exc,
            )
            with tempfile.TemporaryDirectory(prefix="imagion-backbone-") as scratch:
                made = _export_backbone(model, Path(scratch))
                session = ort.InferenceSession(str(made), opts, providers=["CPUExecutionProvider"])
            return _session_runner(session, model)
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return _session_runner(session, model)


def _session_runner(session: Any, model: ImagionModel) -> Callable[[np.ndarray], np.ndarray]:
    pre = model.preprocess

    def run(batch: np.ndarray) -> np.ndarray:
        out = session.run(None, {"x": pre.normalize_np(batch)})[0]
        return np.asarray(out, dtype=np.float32)

    return run
