"""Where imagion keeps things and what it runs on: the cache folder, the files shipped in the
package, the device and the number of CPU threads. One home for each of these rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from imagion.errors import CheckpointError, ImagionError
from imagion.files import regular_file

if TYPE_CHECKING:
    import torch

ENV_CACHE = "IMAGION_CACHE"
RESOURCES = Path(__file__).parent / "resources"


def default_cache_dir() -> Path:
    """$IMAGION_CACHE, else ~/.cache/imagion."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "imagion"


def bundled_model_path() -> Path:
    return RESOURCES / "default-model.pt"


def bundled_export_path() -> Path:
    """The bundled model exported for ONNX Runtime (model.onnx, meta.json, imagenet.npz)."""
    return RESOURCES / "default-model-onnx"


def bundled_stats_path() -> Path:
    return RESOURCES / "label-stats-local.json"


BUNDLED_CAVEAT = (
    "the bundled model learned from 10,745 posts of 2017 influencer accounts: it orders 57% of "
    "same-account pairs right on accounts it never saw (67% when one has twice the likes), a weak "
    "hint on any one photo"
)


def is_bundled_model(path: str | os.PathLike) -> bool:
    return Path(path).resolve() == bundled_model_path().resolve()


def imagenet_classes_path() -> Path:
    return RESOURCES / "imagenet-classes.json"


DEFAULT_MODEL = "default"  # names the bundled model wherever a checkpoint is asked for


def model_path(model: str | os.PathLike | None) -> Path:
    """The checkpoint to use: the given one, else (None or "default", when no file has that
    name) the bundled model; it must be a regular file."""
    if model is None or (str(model) == DEFAULT_MODEL and not Path(model).exists()):
        path = bundled_model_path()
        if not path.is_file():
            raise ImagionError(
                f"the bundled model {path} is missing from this installation; pass `model`."
            )
        return path
    path = Path(model)
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{path}: checkpoint not found.")
    return regular_file(path, "checkpoint")


def cpu_threads() -> int:
    """Threads for decoding and CPU inference: every core, at most 8; IMAGION_THREADS when set
    (to leave cores to other work on a shared machine)."""
    given = os.environ.get("IMAGION_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, min(8, os.cpu_count() or 1))


def has_nvidia() -> bool:
    """An NVIDIA GPU is present (checked without importing torch)."""
    return Path("/dev/nvidiactl").exists()


def pick_device(choice: str) -> torch.device:
    """`auto`: CUDA when available (this process's GPU under torchrun), else the CPU."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise ImagionError(
            "`device` cuda: no CUDA GPU is available here; use `device` cpu or auto."
        )
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
