"""`imagion train`: fit a model to the catalog's 0–10 image scores, on a GPU or the CPU.

Images are decoded once into a uint8 cache; on CUDA the whole uint8 set lives on the GPU when it
fits, batches are augmented there and run under bf16 autocast in channels_last. A frozen backbone's
features are computed once, so only the head trains (seconds). Several GPUs: torchrun (DDP).
`last.pt` is written after every epoch (for --resume) and `best.pt` whenever the validation
accuracy improves, so a crash never leaves a run without its best model.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from imagion.choices import Loss
from imagion.errors import ImagionError
from imagion.evaluation.pairs import pairwise_accuracy, same_account_pairs
from imagion.files import remove_stale_temporaries, writable_folder
from imagion.models.checkpoints import (
    model_from_checkpoint,
    read_checkpoint,
    trainable_state,
)
from imagion.models.networks import ImagionModel
from imagion.models.registry import build_model
from imagion.models.transforms import Calibration
from imagion.settings import default_cache_dir, pick_device
from imagion.training.losses import training_loss
from imagion.training.options import TrainOptions, TrainResult
from imagion.training.prepare import (
    Progress,
    Split,
    TrainingData,
    distributed,
    load_training_data,
    read_split,
    shuffled_batches,
)
from imagion.training.writer import Best, CheckpointWriter


class Fitter:
    """The model, its data on the device and the optimizer: one epoch at a time."""

    def __init__(
        self,
        model: ImagionModel,
        data: TrainingData,
        opts: TrainOptions,
        device: torch.device,
        world: int,
    ) -> None:
        self.model, self.data, self.opts, self.device, self.world = model, data, opts, device, world
        self.frozen = model.frozen
        self.net: torch.nn.Module = model.head if self.frozen else model
        if not self.frozen:
            model.to(memory_format=torch.channels_last)
        train_net: torch.nn.Module = self.net
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            train_net = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.step_net = torch.compile(train_net) if opts.compile else train_net
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
        self.y = torch.from_numpy(data.target).to(device)
        self.g = torch.from_numpy(data.groups).to(device)
        self.amp = device.type == "cuda"

    def inputs(self, idx: np.ndarray, augment: bool) -> torch.Tensor:
        xb = self.data.x[torch.as_tensor(idx, device=self.data.x.device)]
        if self.frozen:
            return xb
        xb = xb.to(self.device, non_blocking=True)
        if augment:  # random horizontal flip, on the device
            flip = torch.rand(len(xb), device=self.device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(2), xb)
        return self.model.preprocess.normalize(xb)

    def _train_mode(self) -> None:
        self.net.train()
        if self.frozen:
            self.model.train()  # EffNetLite keeps its frozen backbone in eval mode

    @torch.no_grad()
    def predict(self, idx: np.ndarray) -> np.ndarray:
        self.net.eval()
        outs = []
        for s in range(0, len(idx), 256):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                o = self.net(self.inputs(idx[s : s + 256], False))
            outs.append(o.float().reshape(-1).cpu())
        self._train_mode()
        return torch.cat(outs).numpy() if outs else np.array([])

    def epoch(self, epoch: int, rank: int, progress: Progress | None) -> dict[str, float]:
        """One pass over the training posts; returns the epoch's metrics row."""
        opts, data, world = self.opts, self.data, self.world
        torch.manual_seed(opts.seed * 100_003 + epoch)
        rng = np.random.default_rng(opts.seed * 100_003 + epoch)
        tr = data.train_idx
        batches = shuffled_batches(
            len(tr), opts.batch_size * world, data.groups[tr], opts.loss == Loss.pairwise, rng
        )
        self._train_mode()
        t0, seen, total = time.perf_counter(), 0, 0.0
        for b, batch in enumerate(batches):
            local = tr[batch][rank::world] if world > 1 else tr[batch]
            if len(local) == 0:
                continue
            idx = torch.as_tensor(local, device=self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                pred = self.step_net(self.inputs(local, True)).float().reshape(-1)
            loss = training_loss(opts.loss, pred, self.y[idx], self.g[idx])
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            self.optim.step()
            total += float(loss.detach()) * len(local)
            seen += len(local)
            if progress and rank == 0:
                rate = seen * world / max(time.perf_counter() - t0, 1e-9)
                progress(
                    f"epoch {epoch + 1}/{opts.epochs}",
                    b + 1,
                    len(batches),
                    f"loss {total / seen:.4f} · {rate:,.0f} img/s",
                )
        row = {
            "epoch": epoch + 1,
            "train_loss": total / max(seen, 1),
            "images_per_s": seen * world / max(time.perf_counter() - t0, 1e-9),
        }
        return row | self.validate()

    def validate(self) -> dict[str, float]:
        va, data = self.data.val_idx, self.data
        if not len(va):
            return {}
        pv = self.predict(va)
        with torch.no_grad():
            loss = training_loss(
                self.opts.loss,
                torch.from_numpy(pv),
                torch.from_numpy(data.target[va]),
                torch.from_numpy(data.groups[va]),
            )
        return {
            "val_loss": float(loss),
            "val_pairwise_accuracy": pairwise_accuracy(pv, data.likes[va], data.groups[va]),
        }

    def calibration(self) -> Calibration:
        """Scores and pair probabilities fitted on the current model's training predictions."""
        tr, data = self.data.train_idx, self.data
        raw = self.predict(tr)
        i, j, _ = same_account_pairs(data.groups[tr], data.likes[tr])
        return Calibration.fit(
            raw, (raw[i] - raw[j], (data.likes[tr][i] > data.likes[tr][j]).astype(float))
        )


def _check(
    opts: TrainOptions, out: Path, rank: int, log: Callable[[str], None]
) -> dict[str, Any] | None:
    """Options and the run folder, before any work; returns the state to resume from."""
    if opts.epochs < 1 or opts.batch_size < 1 or opts.lr <= 0:
        raise ImagionError("--epochs and --batch-size must be ≥ 1 and --lr > 0.")
    if rank == 0:
        writable_folder(out, "--out")
        for name in ("best.pt", "last.pt"):
            if (out / name).is_dir():
                raise ImagionError(f"--out {out}: {name} is a folder; choose another --out.")
        removed = remove_stale_temporaries(out)
        if removed:
            log(f"removed {removed} temporary file(s) left in {out} by an interrupted run")
    if not opts.resume:
        return None
    last = out / "last.pt"
    if not last.is_file():
        raise ImagionError(f"--resume: {last} does not exist; train without --resume first.")
    state = read_checkpoint(last)
    if state["arch"] != opts.arch:
        raise ImagionError(f"--resume: {last} is a {state['arch']!r} run, not {opts.arch!r}.")
    return state


def _run_meta(
    catalog_path: Path,
    opts: TrainOptions,
    split: Split,
    data: TrainingData,
    world: int,
    device: torch.device,
) -> dict[str, Any]:
    return {
        "catalog": str(Path(catalog_path).resolve()),
        "score_settings": split.score_settings,
        "train_accounts": split.train_accounts,
        "val_accounts": split.val_accounts,
        "train_posts": len(data.train_idx),
        "val_posts": len(data.val_idx),
        "skipped_images": len(data.problems),
        "split_seed": opts.seed,
        "val_fraction": opts.val_fraction,
        "options": opts.to_dict(),
        "command": " ".join(["imagion", *sys.argv[1:]]) if sys.argv else "",
        "world_size": world,
        "device": str(device),
    }


def _improved(row: dict[str, float], best: Best, validated: bool) -> bool:
    acc = row.get("val_pairwise_accuracy", float("nan"))
    return not validated or (bool(np.isfinite(acc)) and acc > best.accuracy) or best.state is None


def train(
    catalog_path: Path,
    opts: TrainOptions,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> TrainResult:
    """Train and write `best.pt`, `last.pt` and `metrics.csv` into `opts.out`."""
    rank, world = distributed()
    device = pick_device(opts.device)
    out = Path(opts.out)
    resume = _check(opts, out, rank, log)
    split = read_split(catalog_path, opts)
    torch.manual_seed(opts.seed)
    model = build_model(opts.arch, **opts.model_config())
    if resume is not None:
        model = model_from_checkpoint(resume, out / "last.pt", expect_arch=opts.arch)
    model.to(device)
    data = load_training_data(
        split,
        model,
        device,
        Path(opts.cache_dir or default_cache_dir()),
        progress if rank == 0 else None,
    )
    for p in data.problems:
        log(f"skipped: {p}")
    fit = Fitter(model, data, opts, device, world)
    writer = CheckpointWriter(
        out, _run_meta(catalog_path, opts, split, data, world, device), enabled=rank == 0
    )
    history, best = _resume_into(fit, resume)
    validated = len(data.val_idx) > 0
    try:
        best = _epochs(fit, writer, history, best, rank, progress, log)
        interrupted = False
    except Interrupted as stop:
        interrupted, best = True, stop.best
        log(f"interrupted: {out / 'last.pt'} holds epoch {len(history)}; continue with --resume")
    _finish(model, fit, writer, best, history, validated, rank, world)
    return TrainResult(
        checkpoint=out / "best.pt",
        epochs_run=len(history),
        best_epoch=best.epoch,
        best_val_accuracy=best.accuracy if validated else None,
        history=copy.deepcopy(history),
        skipped_images=data.problems,
        train_posts=len(data.train_idx),
        val_posts=len(data.val_idx),
        train_accounts=split.train_accounts,
        val_accounts=split.val_accounts,
        interrupted=interrupted,
    )


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
    log: Callable[[str], None],
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
                if rank == 0:
                    writer.best(model, fit.calibration(), best, history, validated)
            writer.last(model, fit.optim, history, best)
            log(_epoch_line(row))
            if validated and epoch + 1 - best.epoch >= opts.patience:
                log(f"early stop: no better validation accuracy for {opts.patience} epochs")
                break
    except KeyboardInterrupt:
        raise Interrupted(best) from None
    return best


def _resume_into(fit: Fitter, resume: dict[str, Any] | None) -> tuple[list[dict[str, float]], Best]:
    if resume is None:
        return [], Best()
    fit.optim.load_state_dict(resume["optimizer"])
    best = Best(float(resume["best_acc"]), int(resume["best_epoch"]), resume.get("best_state"))
    return list(resume["history"])[: int(resume["epoch"])], best


def _finish(
    model: ImagionModel,
    fit: Fitter,
    writer: CheckpointWriter,
    best: Best,
    history: list[dict[str, float]],
    validated: bool,
    rank: int,
    world: int,
) -> None:
    """The best model, calibrated, written once more with the complete history."""
    if best.state is not None:
        model.load_state_dict(best.state, strict=not model.frozen)
    if rank == 0:
        writer.best(model, fit.calibration(), best, history, validated)
    if world > 1:
        dist.barrier()


def _epoch_line(row: dict[str, float]) -> str:
    line = f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}"
    if "val_loss" in row:
        line += (
            f", val loss {row['val_loss']:.4f}, val pairwise acc {row['val_pairwise_accuracy']:.3f}"
        )
    return line
