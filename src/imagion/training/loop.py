"""`imagion train`: fit a model to the catalog's 0–10 image scores, on a GPU or the CPU.

Images are decoded once into a uint8 cache; on CUDA the whole uint8 set lives on the GPU when it
fits, batches are augmented there and run under bf16 autocast in channels_last. A frozen backbone's
features are computed once, so only the head trains (seconds). Several GPUs: torchrun (DDP).
`last.pt` is written after every epoch (for --resume) and `best.pt` whenever the validation
accuracy improves, so a crash never leaves a run without its best model.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from imagion.errors import CheckpointError, OptionError
from imagion.files import regular_file, remove_stale_temporaries, writable_folder
from imagion.labels.suggestions import LabelStats
from imagion.models.card import CheckpointCard, TrainingRecord
from imagion.models.checkpoints import (
    model_from_checkpoint,
    read_checkpoint,
    trainable_state,
)
from imagion.models.registry import build_model
from imagion.progress import Progress
from imagion.settings import default_cache_dir, pick_device
from imagion.training.calibrate import calibrate
from imagion.training.fitter import Fitter
from imagion.training.init import init_leak, resolve_init
from imagion.training.options import Holdout, TrainOptions, TrainResult
from imagion.training.prepare import (
    SplitFrame,
    TrainingData,
    distributed,
    load_training_data,
    read_split,
)
from imagion.training.writer import Best, CheckpointWriter, check_run_files

log = logging.getLogger(__name__).info  # the CLI shows these; Python: configure logging


def _check(opts: TrainOptions, out: Path, rank: int) -> dict[str, Any] | None:
    """Options and the run folder, before any work; returns the state to resume from."""
    opts.check()
    if rank == 0:
        writable_folder(out, "`out`")
        check_run_files(out)
        removed = remove_stale_temporaries(out)
        if removed:
            log(f"removed {removed} temporary file(s) left in {out} by an interrupted run")
        if not opts.resume and (out / "best.pt").is_file():
            log(
                f"note: {out} holds a model of an earlier run; this run replaces it "
                "(give another `out` to keep both)"
            )
    if opts.stats is not None:
        regular_file(opts.stats, "`stats`")  # checked before the work, and never read from a FIFO
    if not opts.resume:
        return None
    last = out / "last.pt"
    if not last.is_file():
        raise OptionError("resume", "", f"{last} does not exist; train without it first.")
    state = read_checkpoint(last)
    if state["arch"] != opts.architecture:
        raise CheckpointError(
            f"`resume`: {last} is a {state['arch']!r} run, not {opts.architecture!r}."
        )
    _same_recipe(opts, state, last)
    return state


def _same_recipe(opts: TrainOptions, state: dict[str, Any], last: Path) -> None:
    """--resume continues the run as it was started: its optimizer state holds the old
    learning rate, so another recipe would be recorded but not used."""
    record = CheckpointCard.from_dict(state, last).training
    then = record.options if record else {}
    now = opts.to_dict()
    recipe = [k for k in opts.recipe.to_dict() if k not in ("epochs", "patience", "val_fraction")]
    diff = [k for k in recipe if k in then and str(then[k]) != str(now.get(k))]
    if diff:
        was = ", ".join(f"--{k.replace('_', '-')} {then[k]}" for k in diff)
        raise CheckpointError(
            f"`resume`: {last} was trained with {was}; resume with the same options, "
            "or start a new run in another `out`."
        )


def _settings(text: str | None) -> dict[str, Any]:
    """The catalog's score settings (stored as JSON text in its meta table)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _record(
    catalog_path: Path,
    opts: TrainOptions,
    split: SplitFrame,
    data: TrainingData,
    world: int,
    device: torch.device,
    init: tuple[dict[str, Any], Path] | None,
) -> TrainingRecord:
    """What the checkpoint card says about this run."""
    label_stats = None
    if opts.stats is not None:
        label_stats = LabelStats.load_checked(opts.stats).to_dict()
    return TrainingRecord(
        catalog=str(Path(catalog_path).resolve()),
        score_settings=_settings(split.score_settings),
        train_accounts=list(split.train_accounts),
        val_accounts=list(split.val_accounts),
        train_posts=len(data.train_posts),
        val_posts=len(data.val_idx),
        skipped_images=len(data.problems),
        split=str(split.kind),
        train_time_range={k: [*v] for k, v in split.train_time_range().items()},
        val_time_range={k: [*v] for k, v in split.val_time_range().items()},
        undated_excluded=split.undated,
        split_seed=opts.seed,
        val_fraction=opts.val_fraction,
        options=opts.to_dict(),
        command=opts.command,
        world_size=world,
        device=str(device),
        init=str(init[1]) if init else None,
        label_stats=label_stats,
    )


def _improved(row: dict[str, float], best: Best, validated: bool) -> bool:
    acc = row.get("val_pairwise_accuracy", float("nan"))
    return not validated or (bool(np.isfinite(acc)) and acc > best.accuracy) or best.state is None


def train(
    catalog_path: Path,
    opts: TrainOptions,
    progress: Progress | None = None,
    holdout: Holdout | None = None,
) -> TrainResult:
    """Train and write `best.pt`, `last.pt` and `metrics.csv` into `opts.out`."""
    opts, init = resolve_init(opts)
    rank, world = distributed()
    device = pick_device(opts.device)
    out = Path(opts.out)
    resume = _check(opts, out, rank)
    split = read_split(catalog_path, opts, holdout)
    leak = init_leak(opts.init, split.val_accounts) if split.val_accounts else None
    if leak:
        log(leak.replace("this accuracy", "the validation accuracy"))
    if split.undated:
        log(f"`split` time: {split.undated} post(s) without a date are left out")
    torch.manual_seed(opts.seed)
    model = build_model(opts.architecture, **opts.model_config())
    if init is not None:
        model = model_from_checkpoint(init[0], init[1], expect_arch=opts.architecture)
    initial = {k: v.detach().clone() for k, v in trainable_state(model).items()}
    if resume is not None:
        model = model_from_checkpoint(resume, out / "last.pt", expect_arch=opts.architecture)
    model.to(device)
    data = load_training_data(
        split,
        model,
        device,
        Path(opts.cache_dir or default_cache_dir()),
        progress if rank == 0 else None,
        augment=opts.tone_augment,
    )
    for p in data.problems:
        log(f"skipped: {p}")
    fit = Fitter(model, data, opts, device, world)
    writer = CheckpointWriter(
        out, _record(catalog_path, opts, split, data, world, device, init), enabled=rank == 0
    )
    history, best = _resume_into(fit, resume)
    try:
        best = _epochs(fit, writer, history, best, rank, progress)
        interrupted = False
    except Interrupted as stop:
        interrupted, best = True, stop.best
        log(f"interrupted: {out / 'last.pt'} holds epoch {len(history)}; continue with `resume`")
    _finish(fit, writer, best, history, initial, rank, world)
    return _result(out, opts, split, data, history, best, interrupted)


class Interrupted(Exception):
    """Ctrl-C between or during epochs, carrying the best model so far."""

    def __init__(self, best: Best) -> None:
        super().__init__("interrupted")
        self.best = best


def _epochs(
    fit: Fitter,
    writer: CheckpointWriter,
    history: list[dict[str, float]],
    best: Best,
    rank: int,
    progress: Progress | None,
) -> Best:
    """Epochs until the last one or early stopping; `history` grows in place."""
    opts, model = fit.opts, fit.model
    validated = len(fit.data.val_idx) > 0
    try:
        for epoch in range(len(history), opts.epochs):
            row = fit.epoch(epoch, rank, progress)
            history.append(row)
            if _improved(row, best, validated):
                acc = row.get("val_pairwise_accuracy", float("nan"))
                state = {k: v.detach().cpu().clone() for k, v in trainable_state(model).items()}
                best = Best(
                    acc if validated and np.isfinite(acc) else best.accuracy, epoch + 1, state
                )
                if (
                    rank == 0 and validated
                ):  # without validation every epoch is "best": _finish writes it
                    writer.best(model, calibrate(fit, None), best, history, validated)
            writer.last(model, fit.optim, history, best)
            log(_epoch_line(row))
            if validated and epoch + 1 - best.epoch >= opts.patience:
                log(f"early stop: no better validation accuracy for {opts.patience} epochs")
                break
    except KeyboardInterrupt:
        raise Interrupted(best) from None
    return best


def _result(
    out: Path,
    opts: TrainOptions,
    split: SplitFrame,
    data: TrainingData,
    history: list[dict[str, float]],
    best: Best,
    interrupted: bool,
) -> TrainResult:
    validated = len(data.val_idx) > 0
    return TrainResult(
        checkpoint=out / "best.pt",
        arch=opts.architecture,
        split=str(split.kind),
        epochs_run=len(history),
        best_epoch=best.epoch,
        best_val_accuracy=best.accuracy if validated else None,
        history=copy.deepcopy(history),
        skipped_images=data.problems,
        train_posts=len(data.train_posts),
        val_posts=len(data.val_idx),
        train_accounts=split.train_accounts,
        val_accounts=split.val_accounts,
        interrupted=interrupted,
    )


def _resume_into(fit: Fitter, resume: dict[str, Any] | None) -> tuple[list[dict[str, float]], Best]:
    if resume is None:
        return [], Best()
    fit.optim.load_state_dict(resume["optimizer"])
    best = Best(float(resume["best_acc"]), int(resume["best_epoch"]), resume.get("best_state"))
    return list(resume["history"])[: int(resume["epoch"])], best


def _finish(
    fit: Fitter,
    writer: CheckpointWriter,
    best: Best,
    history: list[dict[str, float]],
    initial: dict[str, torch.Tensor],
    rank: int,
    world: int,
) -> None:
    """The best model, calibrated on held-out pairs, written once more with the whole history."""
    model = fit.model
    if best.state is not None:
        model.load_state_dict(best.state, strict=not model.frozen)
    if rank == 0:
        calibration = calibrate(fit, initial)
        writer.best(model, calibration, best, history, len(fit.data.val_idx) > 0)
    if world > 1:
        dist.barrier()


def _epoch_line(row: dict[str, float]) -> str:
    line = f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}"
    if "val_loss" in row:
        line += (
            f", val loss {row['val_loss']:.4f}, val pairwise acc {row['val_pairwise_accuracy']:.3f}"
        )
    return line
