"""Where imagion keeps things and what it runs on: the cache folder, the files shipped in the
package, the device and the number of CPU threads. One home for each of these rules."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from imagion._types import PathLike
from imagion.errors import CheckpointError, OptionError
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


def is_bundled_model(path: PathLike) -> bool:
    return Path(path).resolve() == bundled_model_path().resolve()


def imagenet_classes_path() -> Path:
    return RESOURCES / "imagenet-classes.json"


DEFAULT_MODEL = "default"  # names the bundled model wherever a checkpoint is asked for


def model_path(model: PathLike | None) -> Path:
    """The checkpoint to use: the given one, else (None or "default", when no file has that
    name) the bundled model; it must be a regular file."""
    if model is None or (str(model) == DEFAULT_MODEL and not Path(model).exists()):
        path = bundled_model_path()
        if not path.is_file():
            raise CheckpointError(
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


def onnx_options(ort: Any) -> Any:
    """ONNX Runtime's session options for imagion: cpu_threads() threads that sleep when they
    wait instead of spinning. Decoding (and the quality measures) run in threads beside the model;
    spinning threads took the cores from them: rank of 720 photos on 2 cores is 1.14× faster
    with 15% less CPU when they sleep (bench/onnx_spinning.py, docs/benchmarks.md)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cpu_threads()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def has_nvidia() -> bool:
    """An NVIDIA GPU is present (checked without importing torch)."""
    return Path("/dev/nvidiactl").exists()


Runtime = Literal["onnxruntime", "torch"]
Accelerator = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class Backend:
    """What a `device` choice means here: which runtime runs the model, and on what."""

    runtime: Runtime
    device: Accelerator


def wants_gpu(choice: str, gpu_present: bool) -> bool:
    """`device` cuda, or auto where a GPU is present (this machine, or a Ray cluster)."""
    return choice == "cuda" or (choice == "auto" and gpu_present)


def onnxruntime_module() -> Any | None:
    """ONNX Runtime, when installed (the light install's engine)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def onnxruntime_has_cuda() -> bool:
    """onnxruntime-gpu is installed and offers its CUDA provider."""
    ort = onnxruntime_module()
    return ort is not None and "CUDAExecutionProvider" in ort.get_available_providers()


def torch_has_cuda() -> bool:
    """PyTorch is installed and sees a CUDA GPU (imports torch only when it is installed)."""
    try:
        if importlib.util.find_spec("torch") is None:
            return False
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_backend(choice: str, *, onnx: bool = True) -> Backend:
    """The one meaning of `device` (auto, cuda, cpu), for the engine, PyTorch and Ray.

    ONNX Runtime unless `onnx` is False (training, or a model that cannot be exported); on a
    machine with an NVIDIA GPU, ONNX Runtime's CUDA provider when onnxruntime-gpu is installed,
    PyTorch's CUDA when only PyTorch sees the GPU, else the CPU. `device` cuda with no GPU that
    either can use is an OptionError."""
    if choice not in ("auto", "cuda", "cpu"):
        raise OptionError("device", choice, "use auto, cuda or cpu.")
    ort = onnxruntime_module() is not None if onnx else False
    gpu_here = has_nvidia() if onnx else True  # PyTorch checks for itself (WSL has no nvidiactl)
    if wants_gpu(choice, gpu_here):
        if ort and onnxruntime_has_cuda():
            return Backend("onnxruntime", "cuda")
        if torch_has_cuda():
            return Backend("torch", "cuda")
        if choice == "cuda":
            raise OptionError(
                "device",
                choice,
                "no CUDA GPU is available here (install onnxruntime-gpu, or PyTorch with CUDA); "
                "use `device` cpu or auto.",
            )
    return Backend("onnxruntime" if ort else "torch", "cpu")


def pick_device(choice: str) -> torch.device:
    """The torch device for `device` as `choose_backend` means it for PyTorch: CUDA (this
    process's GPU under torchrun) when PyTorch sees one, else the CPU."""
    import torch

    if choose_backend(choice, onnx=False).device == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
