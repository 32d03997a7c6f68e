"""The training options, declared once for `imagion train` and `imagion eval --cv`.

`@training_options` adds every field of `TRAINING_FIELDS` to a command's signature (with the
defaults of `TrainOptions`) and hands the command one `recipe: TrainOptions` instead."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

import typer

from imagion.choices import Loss, Tone
from imagion.training.options import TrainOptions

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainOptions)}

TRAINING_FIELDS: dict[str, Any] = {
    "arch": Annotated[
        str | None,
        typer.Option(
            "--arch",
            help="Architecture: seed-cnn, effnet-lite0 (see `imagion models`). Default: effnet-lite0, or the --init checkpoint's.",
        ),
    ],
    "epochs": Annotated[int, typer.Option(help="Passes over the training posts.")],
    "batch_size": Annotated[int, typer.Option(help="Posts per step (per GPU under torchrun).")],
    "lr": Annotated[float, typer.Option(help="AdamW learning rate.")],
    "weight_decay": Annotated[float, typer.Option(help="AdamW weight decay.")],
    "loss": Annotated[
        Loss,
        typer.Option(help="mse on the 0–10 score (the original design's) or pairwise (RankNet)."),
    ],
    "val_fraction": Annotated[
        float,
        typer.Option(
            help="Share of (training) accounts held out for validation and early stopping; 0 = fixed epochs."
        ),
    ],
    "patience": Annotated[
        int, typer.Option(help="Stop after N epochs without a better validation accuracy.")
    ],
    "finetune": Annotated[
        bool | None,
        typer.Option(
            "--finetune/--no-finetune",
            help="Unfreeze the pretrained backbone. Default: the --init checkpoint's, else frozen.",
            show_default=False,
        ),
    ],
    "hidden": Annotated[
        int | None,
        typer.Option(
            help="Hidden units of the head (0 = linear head). Default: the --init checkpoint's, else 0.",
            show_default=False,
        ),
    ],
    "dropout": Annotated[
        float | None,
        typer.Option(
            help="Dropout before the head (and inside it with --hidden). Default: the --init checkpoint's, else 0.2.",
            show_default=False,
        ),
    ],
    "image_size": Annotated[
        int | None,
        typer.Option(help="EfficientNet input size, a multiple of 32 (default: native 224)."),
    ],
    "tone": Annotated[
        Tone | None,
        typer.Option(
            help="Tone map applied to every image the model sees, in training and in rank: none or equalize (per-image histogram equalization). Default: the --init checkpoint's, else none.",
        ),
    ],
    "tone_augment": Annotated[
        int,
        typer.Option(
            help="Also train on N tone-varied copies of each training image (frozen backbones; features cached per copy)."
        ),
    ],
    "compile": Annotated[bool, typer.Option("--compile", help="torch.compile the model (CUDA).")],
    "init": Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Start from this checkpoint ('default': the bundled model): a personal model on tens of posts is pulled towards it. Its architecture and input size are used unless given.",
        ),
    ],
}


def training_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the training options; it receives them as `recipe: TrainOptions`."""
    sig = inspect.signature(fn)
    hints = get_type_hints(fn, include_extras=True)
    own = [p for p in sig.parameters.values() if p.name != "recipe"]
    extra = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS[name], annotation=hint
        )
        for name, hint in TRAINING_FIELDS.items()
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in TRAINING_FIELDS}
        kwargs["recipe"] = TrainOptions(**values)
        return fn(*args, **kwargs)

    params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
        for p in own
    ]
    params += extra
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {k: v for k, v in hints.items() if k != "recipe"} | TRAINING_FIELDS
    return wrapper
