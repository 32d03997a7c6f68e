"""`train --init default|PATH`: start from a compatible checkpoint (the bundled model, or one of
the user's), so a personal model trained on tens of posts is pulled towards the general one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from imagion._types import JSONValue
from imagion.errors import CheckpointError
from imagion.models.card import CheckpointCard
from imagion.models.checkpoints import read_card, read_checkpoint
from imagion.settings import model_path
from imagion.training.options import (
    DEFAULT_DROPOUT,
    DEFAULT_FINETUNE,
    DEFAULT_HIDDEN,
    TrainOptions,
    given,
)

Init = tuple[dict[str, Any], Path]  # the --init checkpoint and where it came from


def _check(opts: TrainOptions, card: CheckpointCard, path: Path) -> None:
    """What the run says must match the checkpoint's architecture and preprocessing."""
    if card.arch != opts.architecture:
        raise CheckpointError(
            f"`init` {path} is a {card.arch} model, this run trains {opts.architecture}; "
            f"pass `arch` {card.arch} (or another `init`)."
        )
    # dropout shapes no weight: a run may change it; the rest must match the checkpoint
    theirs = {k: v for k, v in card.config.items() if k not in ("pretrained", "dropout")}
    ours = {k: v for k, v in opts.model_config().items() if k != "dropout"}
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if diff:
        wanted = ", ".join(f"--{k.replace('_', '-')} {theirs.get(k)}" for k in diff)
        raise CheckpointError(
            f"`init` {path} was trained with {', '.join(f'{k}={theirs.get(k)}' for k in diff)} "
            f"(preprocessing: {card.preprocess.size} px), this run with "
            f"{', '.join(f'{k}={ours.get(k)}' for k in diff)}; pass {wanted} to start from it."
        )


def resolve_init(opts: TrainOptions) -> tuple[TrainOptions, Init | None]:
    """The run's options completed from --init (what the run does not say, such as the
    architecture and input size, comes from the checkpoint) and the checked checkpoint."""
    if opts.init is None:
        return replace(
            opts,
            arch=opts.architecture,
            hidden=given(opts.hidden, DEFAULT_HIDDEN),
            finetune=given(opts.finetune, DEFAULT_FINETUNE),
            dropout=given(opts.dropout, DEFAULT_DROPOUT),
        ), None
    path = model_path(None if opts.init == "default" else opts.init)
    ckpt = read_checkpoint(path)
    card = CheckpointCard.from_dict(ckpt, path)
    config = card.config
    opts = replace(
        opts,
        arch=opts.arch or card.arch,
        image_size=opts.image_size if opts.image_size is not None else _int(config, "image_size"),
        hidden=given(opts.hidden, _int(config, "hidden") or DEFAULT_HIDDEN),
        finetune=given(opts.finetune, bool(config.get("finetune", DEFAULT_FINETUNE))),
        tone=opts.tone if opts.tone is not None else _text(config, "tone"),
        dropout=given(opts.dropout, _float(config, "dropout", DEFAULT_DROPOUT)),
    )
    _check(opts, card, path)
    return opts, (ckpt, path)


def init_leak(init: str | None, accounts: Iterable[str]) -> str | None:
    """A warning when the --init checkpoint trained on posts of these accounts: a model started
    from it has seen them, whatever the folds say."""
    if not init:
        return None
    card = read_card(model_path(None if init == "default" else init))
    seen = set(card.training.train_accounts if card.training else [])
    both = sorted(seen & set(accounts))
    if not both:
        return None
    return (
        f"WARNING: the `init` checkpoint trained on {len(both)} of these accounts "
        f"({', '.join(both[:3])}{'…' if len(both) > 3 else ''}): this accuracy is NOT an "
        "estimate for new posts; evaluate on accounts it never saw."
    )


def _int(config: dict[str, JSONValue], key: str) -> int | None:
    value = config.get(key)
    return int(value) if isinstance(value, int | float) else None


def _float(config: dict[str, JSONValue], key: str, default: float) -> float:
    value = config.get(key)
    return float(value) if isinstance(value, int | float) else default


def _text(config: dict[str, JSONValue], key: str) -> str | None:
    value = config.get(key)
    return value if isinstance(value, str) else None
