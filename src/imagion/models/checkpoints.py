"""Self-describing checkpoints: architecture and config, preprocessing, calibration, training
summary, metrics and version in one file, written atomically and read with `weights_only=True`."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from imagion._types import PathLike
from imagion.errors import CheckpointError
from imagion.files import atomic_path, regular_file
from imagion.models.card import (
    CHECKPOINT_FORMAT,
    EVALUATION_KEYS,
    CheckpointCard,
    TrainingRecord,
)
from imagion.models.networks import ImagionModel, fuse_for_inference
from imagion.models.registry import REGISTRY, build_model
from imagion.models.transforms import Calibration, Preprocess
from imagion.settings import model_path


def trainable_state(model: ImagionModel) -> dict[str, torch.Tensor]:
    """What a checkpoint must store: the head alone when the backbone comes from its package."""
    state = model.state_dict()
    if model.frozen:
        return {k: v for k, v in state.items() if k.startswith("head.")}
    return state


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def card_for(
    model: ImagionModel,
    calibration: Calibration | None,
    training: TrainingRecord | None = None,
    metrics: dict[str, Any] | None = None,
) -> CheckpointCard:
    """The card of a model as it is now."""
    return CheckpointCard(
        arch=model.arch,
        config=dict(model.config),
        preprocess=model.preprocess,
        calibration=calibration,
        state_scope="head" if model.frozen else "full",
        training=training,
        metrics=metrics or {},
    )


def checkpoint_payload(model: ImagionModel, card: CheckpointCard, **extra: Any) -> dict[str, Any]:
    """What a checkpoint file holds: the card, the weights, and (last.pt) the resume state."""
    weights = {k: v.detach().cpu() for k, v in trainable_state(model).items()}
    return card.to_dict() | {"state_dict": weights} | extra


def rewrite_card(path: PathLike, card: CheckpointCard) -> Path:
    """Replace a checkpoint's card, keeping its weights (atomically)."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    # format 1 kept cv/transfer/model_card at the top, where they would shadow the new card's
    kept = {k: v for k, v in ckpt.items() if k not in card.to_dict() and k not in EVALUATION_KEYS}
    return save_checkpoint(path, card.to_dict() | kept)


# The most a checkpoint may unpack to: its architecture's weights, AdamW's two moments and the
# best epoch's weights (last.pt), float32, plus room for the description. A deflated zip of a
# few kB can otherwise ask for gigabytes (weights_only stops code, not allocation).
DESCRIPTION_BYTES = 32 << 20


def max_unpacked_bytes(arch: str | None) -> int:
    """The bound for a checkpoint declaring `arch` (unknown: the largest architecture's)."""
    spec = REGISTRY.get(arch or "")
    params = spec.max_parameters if spec else max(s.max_parameters for s in REGISTRY.values())
    return 4 * 4 * params + DESCRIPTION_BYTES


MAX_UNPACKED_BYTES = max_unpacked_bytes(None)


def _declared_arch(z: zipfile.ZipFile) -> str | None:
    """The architecture a checkpoint's card names, read from its pickle's opcodes without
    running it (the string after the first 'arch'); None when it cannot be told."""
    import pickletools

    pickles = [i for i in z.infolist() if i.filename.endswith("data.pkl")]
    if len(pickles) != 1 or pickles[0].file_size > DESCRIPTION_BYTES:
        return None
    try:
        with z.open(pickles[0]) as f:
            data = f.read(DESCRIPTION_BYTES + 1)
        strings = (
            arg
            for op, arg, _ in pickletools.genops(data)
            if isinstance(arg, str) and "UNICODE" in op.name
        )
        for text in strings:
            if text == "arch":
                return next(strings, None)
    except (ValueError, OSError, zipfile.BadZipFile, RuntimeError, EOFError):
        return None
    return None


def _check_unpacked_size(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(i.file_size for i in z.infolist())
            arch = _declared_arch(z)
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: torch.load says what it is
    bound = max_unpacked_bytes(arch)
    if total > bound:
        needs = f"a {arch} model needs" if arch in REGISTRY else "any imagion model needs"
        raise CheckpointError(
            f"{path}: refused, it unpacks to {total:,} bytes, more than {needs} "
            f"({bound:,}); not a checkpoint imagion wrote."
        )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint's dict safely (weights_only) with clear errors, and check it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found.")
    regular_file(path, "checkpoint")
    _check_unpacked_size(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt or truncated: {exc})."
        ) from exc
    except Exception as exc:  # pickle errors of foreign files
        raise CheckpointError(f"{path}: not an imagion checkpoint ({type(exc).__name__}).") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not an imagion checkpoint (no '{CHECKPOINT_FORMAT}' header)."
        )
    validate_checkpoint(ckpt, path)
    return ckpt


def read_card(path: PathLike) -> CheckpointCard:
    """A checkpoint's card, checked (the weights are read and checked too, then dropped)."""
    return CheckpointCard.from_dict(read_checkpoint(Path(path)), Path(path))


def _check_description(ckpt: dict[str, Any], path: Path) -> None:
    arch = ckpt.get("arch")
    if not isinstance(arch, str) or arch not in REGISTRY:
        raise CheckpointError(
            f"{path}: unknown architecture {arch!r} (known: {', '.join(REGISTRY)})."
        )
    config = ckpt.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise CheckpointError(f"{path}: its model config is not a mapping of options.")
    spec = REGISTRY[arch]
    try:
        if set(config) - spec.config_keys:
            raise ValueError(
                f"unknown option(s) {', '.join(sorted(set(config) - spec.config_keys))}"
            )
        expected = spec.preprocess(config).size
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its model config does not fit {arch} ({exc}).") from None
    try:
        pre = Preprocess.from_dict(ckpt.get("preprocess"))
        if ckpt.get("calibration") is not None:
            Calibration.from_dict(ckpt["calibration"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({exc}).") from None
    if expected != pre.size:
        raise CheckpointError(
            f"{path}: input size {pre.size} does not match its {arch} config ({expected})."
        )


# where a checkpoint keeps tensors: weights, and (last.pt) the optimizer and the best weights
TENSOR_KEYS = frozenset(("state_dict", "optimizer", "best_state"))


def _holds_tensors(value: object, depth: int = 0) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if depth > 20:
        return True  # nested this deep: no card of ours is
    if isinstance(value, dict):
        return any(_holds_tensors(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_tensors(v, depth + 1) for v in value)
    return False


def validate_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Check what a checkpoint describes, and that its weights are finite, before any use."""
    _check_description(ckpt, path)
    hidden = sorted(k for k, v in ckpt.items() if k not in TENSOR_KEYS and _holds_tensors(v))
    if hidden:
        raise CheckpointError(
            f"{path}: tensors under {', '.join(map(str, hidden[:3]))}, where imagion keeps none; "
            "not a checkpoint imagion wrote."
        )
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: damaged checkpoint (no weights).")
    bad = [
        k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise CheckpointError(
            f"{path}: weights {', '.join(bad[:3])} are not finite (NaN or inf): the training diverged; "
            "retrain with a lower `lr`."
        )


@dataclass
class LoadedModel:
    """A checkpoint ready to run: the model (eval mode), its card, and where it came from."""

    model: ImagionModel
    card: CheckpointCard
    path: Path

    @property
    def arch(self) -> str:
        return self.model.arch

    @property
    def preprocess(self) -> Preprocess:
        return self.card.preprocess

    @property
    def calibration(self) -> Calibration:
        """The card's calibration, or Calibration.absent() (marked `missing`) when it has none:
        raw outputs shown as they are, which rank, compare and eval say."""
        return self.card.calibration or Calibration.absent()


def _renamed_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoints of imagion 0.1 called the original ConvNet's convolutions `features`."""
    return {
        ("convs." + k[len("features.") :] if k.startswith("features.") else k): v
        for k, v in state.items()
    }


def model_from_checkpoint(
    ckpt: dict[str, Any], path: Path, expect_arch: str | None = None
) -> ImagionModel:
    arch = ckpt["arch"]
    if expect_arch and arch != expect_arch:
        raise CheckpointError(f"{path}: checkpoint is a {arch!r} model, not {expect_arch!r}.")
    model = build_model(arch, **ckpt.get("config", {}))
    strict = ckpt.get("state_scope") == "full"
    try:
        missing, unexpected = model.load_state_dict(
            _renamed_keys(ckpt["state_dict"]), strict=strict
        )
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: weights do not fit architecture {arch!r} ({exc}).") from exc
    if unexpected or (not strict and any(k.startswith("head.") for k in missing)):
        raise CheckpointError(f"{path}: weights do not fit architecture {arch!r}.")
    return model


def load_checkpoint(path: PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """A ready-to-use model (eval mode) with its preprocessing and calibration."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, path)
    model.eval()
    fuse_for_inference(model)
    model.to(device).to(memory_format=torch.channels_last)
    return LoadedModel(model=model, card=CheckpointCard.from_dict(ckpt, path), path=path)


def open_model(model: str | Path | None, device: str | torch.device = "cpu") -> LoadedModel:
    """The given checkpoint, or the bundled default model."""
    return load_checkpoint(model_path(model), device)
