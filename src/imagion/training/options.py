"""What a training run is told (`TrainOptions`, shared by `train` and `eval --cv`) and what it
reports (`TrainResult`)."""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

from imagion._types import PathLike
from imagion.choices import Device, Loss, SplitKind, choice
from imagion.errors import OptionError
from imagion.models.registry import model_spec

DEFAULT_ARCH = "effnet-lite0"
MIN_IMAGE, MAX_IMAGE = 64, 1024  # EfficientNet input sizes (--image-size)
MAX_HIDDEN = 8192
MAX_TONE_COPIES = 8
# what a run uses when it does not say, and no `init` checkpoint does
DEFAULT_HIDDEN, DEFAULT_DROPOUT, DEFAULT_FINETUNE = 0, 0.2, False


def given(value: Any, default: Any) -> Any:
    """`value` when it was given (not None), else `default`."""
    return default if value is None else value


@dataclass
class TrainOptions:
    arch: str | None = None  # None: the --init checkpoint's, else DEFAULT_ARCH
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: Loss = Loss.pairwise
    device: Device = Device.auto
    out: Path = Path("runs/latest")
    resume: bool = False
    seed: int = 0
    val_fraction: float = 0.2
    patience: int = 10
    # None = not given: the `init` checkpoint's value, else the DEFAULT_* above (an explicit
    # value is always kept; finetune=False and hidden=0 switch them off)
    finetune: bool | None = None
    compile: bool = False
    hidden: int | None = None
    dropout: float | None = None  # before the head (and inside it with a hidden layer)
    image_size: int | None = None  # EfficientNet input size (multiple of 32); default: native
    tone: str | None = None  # the model's tone map (TONES); None: the --init checkpoint's, or none
    tone_augment: int = 0  # tone-varied copies of each training image (frozen backbones)
    accounts: list[str] | None = None  # train on these accounts only
    cache_dir: Path | None = None
    split: SplitKind = SplitKind.account  # held-out accounts, or each account's newest posts
    init: str | None = None  # start from this checkpoint ("default": the bundled model)
    stats: Path | None = None  # label statistics to store with the model (labels --save-stats)
    command: str = ""  # how the run was started, for its checkpoint card (the CLI fills it)

    def check(self) -> None:
        """Every value of its type and in range, before any work: one line naming the option
        otherwise."""
        import math

        def bad(option: str, value: object, want: str) -> OptionError:
            return OptionError(option, value, f"{want}.")

        for name, kind in _NUMBERS.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, kind):
                raise bad(name, value, "use a whole number" if kind is int else "use a number")

        if self.epochs < 1:
            raise bad("epochs", self.epochs, "train at least 1 epoch")
        if self.batch_size < 1:
            raise bad("batch_size", self.batch_size, "use at least 1 post per step")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise bad("lr", self.lr, "use a learning rate above 0 and at most 10 (e.g. 1e-3)")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 10):
            raise bad("weight_decay", self.weight_decay, "use a value from 0 to 10 (e.g. 1e-4)")
        if not 0 <= self.val_fraction < 1:
            raise bad("val_fraction", self.val_fraction, "use a share in [0, 1)")
        if self.patience < 1:
            raise bad("patience", self.patience, "wait at least 1 epoch")
        if not 0 <= self.seed < 2**32:
            raise bad("seed", self.seed, "use a whole number from 0 to 4294967295")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise bad("dropout", self.dropout, "use a probability in [0, 1)")
        if self.hidden is not None and not 0 <= self.hidden <= MAX_HIDDEN:
            raise bad("hidden", self.hidden, f"use 0 (a linear head) to {MAX_HIDDEN} units")
        if not 0 <= self.tone_augment <= MAX_TONE_COPIES:
            raise bad("tone_augment", self.tone_augment, f"use 0 to {MAX_TONE_COPIES} copies")
        size = self.image_size
        if size is not None and not (MIN_IMAGE <= size <= MAX_IMAGE and size % 32 == 0):
            raise bad("image_size", size, f"use a multiple of 32 from {MIN_IMAGE} to {MAX_IMAGE}")

    @property
    def architecture(self) -> str:
        return self.arch or DEFAULT_ARCH

    def __post_init__(self) -> None:
        """Strings where the enums are expected (split="time" from Python) become the enums;
        anything else is an OptionError naming the choices."""
        self.split = choice(SplitKind, self.split, "split")
        self.loss = choice(Loss, self.loss, "loss")
        self.device = choice(Device, self.device, "device")
        self.out = Path(self.out)  # a str from Python is a path too
        self.cache_dir = None if self.cache_dir is None else Path(self.cache_dir)
        self.stats = None if self.stats is None else Path(self.stats)
        self.init = None if self.init is None else os.fspath(self.init)

    def model_config(self) -> dict[str, Any]:
        """The options the architecture takes (see its registry entry)."""
        dropout = given(self.dropout, DEFAULT_DROPOUT)
        wanted = {
            "finetune": given(self.finetune, DEFAULT_FINETUNE),
            "hidden": given(self.hidden, DEFAULT_HIDDEN),
            "dropout": None if dropout == DEFAULT_DROPOUT else dropout,
            "image_size": self.image_size,
            "tone": None if self.tone in (None, "none") else str(self.tone),
        }
        keys = model_spec(self.architecture).config_keys
        return {k: v for k, v in wanted.items() if k in keys and v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Path | StrEnum) else v) for k, v in asdict(self).items()
        }

    @property
    def recipe(self) -> Recipe:
        """The recipe part of these options (see Recipe)."""
        return Recipe(
            arch=self.architecture,
            loss=str(self.loss),
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            hidden=given(self.hidden, DEFAULT_HIDDEN),
            dropout=given(self.dropout, DEFAULT_DROPOUT),
            image_size=self.image_size,
            tone=None if self.tone is None else str(self.tone),
            tone_augment=self.tone_augment,
            finetune=given(self.finetune, DEFAULT_FINETUNE),
            split=str(self.split),
            seed=self.seed,
            epochs=self.epochs,
            patience=self.patience,
            val_fraction=self.val_fraction,
        )


_NUMBERS: dict[str, type | tuple[type, ...]] = {
    "epochs": int,
    "batch_size": int,
    "lr": (int, float),
    "weight_decay": (int, float),
    "seed": int,
    "val_fraction": (int, float),
    "patience": int,
    "hidden": int,
    "dropout": (int, float),
    "image_size": int,
    "tone_augment": int,
}
_OPTIONAL = {"hidden", "dropout", "image_size"}


class TrainFields(TypedDict, total=False):
    """`TrainOptions`' fields as keyword arguments of `train` and `cross_validate` (a test keeps
    the two the same)."""

    arch: str | None
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    loss: Loss | str
    device: Device | str
    out: PathLike
    resume: bool
    seed: int
    val_fraction: float
    patience: int
    finetune: bool | None
    compile: bool
    hidden: int | None
    dropout: float | None
    image_size: int | None
    tone: str | None
    tone_augment: int
    accounts: list[str] | None
    cache_dir: PathLike | None
    split: SplitKind | str
    init: PathLike | None
    stats: PathLike | None
    command: str


def with_fields(options: TrainOptions | None, overrides: TrainFields) -> TrainOptions:
    """`options` (default: TrainOptions()) with the `overrides` replaced; a name that is no
    field is an OptionError that suggests the nearest one."""
    names = [f.name for f in fields(TrainOptions)]
    for name in overrides:
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean `{near[0]}`?" if near else "see `imagion.TrainOptions`."
            raise OptionError(name, "", f"not a training option; {hint}")
    base = asdict(options) if options is not None else {}
    merged: dict[str, Any] = {**base, **overrides}
    return TrainOptions(**merged)


@dataclass(frozen=True)
class Recipe:
    """What decides the model a run learns (the recipe), apart from where and how the run goes
    (TrainOptions' plumbing: out, device, resume, cache_dir, command…). A run resumed with
    --resume must have the same recipe."""

    arch: str
    loss: str
    lr: float
    weight_decay: float
    batch_size: int
    hidden: int
    dropout: float
    image_size: int | None
    tone: str | None
    tone_augment: int
    finetune: bool
    split: str
    seed: int
    epochs: int
    patience: int
    val_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Holdout:
    """What one fold of a cross-validation keeps from training: not part of the recipe."""

    val_accounts: list[str] | None = None  # explicit validation accounts
    cutoff: dict[str, int] | None = None  # per account, train only on posts up to this time


@dataclass
class TrainResult:
    checkpoint: Path
    arch: str
    epochs_run: int
    best_epoch: int
    best_val_accuracy: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    skipped_images: list[str] = field(default_factory=list)
    train_posts: int = 0
    val_posts: int = 0
    train_accounts: list[str] = field(default_factory=list)
    val_accounts: list[str] = field(default_factory=list)
    interrupted: bool = False
    split: str = "account"

    def summary(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "arch": self.arch,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_pairwise_accuracy": self.best_val_accuracy,
            "train_posts": self.train_posts,
            "val_posts": self.val_posts,
            "train_accounts": len(self.train_accounts),
            "val_accounts": len(self.val_accounts),
            "skipped_images": len(self.skipped_images),
            "interrupted": self.interrupted,
        }
