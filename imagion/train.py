"""`imagion train`: fit a model to the catalog's 0–10 image scores, on a GPU or the CPU.

Images are decoded once into a uint8 cache; on CUDA the whole uint8 set lives on the GPU when it
fits, batches are augmented there and run under bf16 autocast in channels_last. A frozen backbone's
features are computed once, so only the head trains (seconds). Several GPUs: torchrun (DDP).
"""

from __future__ import annotations

import copy
import csv
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from imagion.catalog import Catalog
from imagion.data import compute_features, load_images, split_accounts, training_frame
from imagion.errors import ImagionError
from imagion.files import atomic_path, remove_stale_temporaries, writable_folder
from imagion.model import (
    Calibration,
    build_model,
    checkpoint_payload,
    frozen_backbone,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
    trainable_state,
)
from imagion.options import Device, Loss
from imagion.pairs import pairwise_accuracy, pairwise_loss, same_account_pairs
from imagion.paths import default_cache_dir


@dataclass
class TrainOptions:
    arch: str = "effnet-lite0"
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
    finetune: bool = False
    compile: bool = False
    hidden: int = 0
    image_size: int | None = (
        None  # EfficientNet input size (multiple of 32); default the native one
    )
    accounts: list[str] | None = None  # train on these accounts only
    val_accounts: list[str] | None = None  # explicit validation accounts (cross-validation)
    cache_dir: Path | None = None

    def model_config(self) -> dict:
        if self.arch.startswith("effnet"):
            return {"finetune": self.finetune, "hidden": self.hidden, "image_size": self.image_size}
        return {}


@dataclass
class TrainResult:
    checkpoint: Path
    epochs_run: int
    best_epoch: int
    best_val_accuracy: float | None
    history: list[dict] = field(default_factory=list)
    skipped_images: list[str] = field(default_factory=list)
    train_posts: int = 0
    val_posts: int = 0
    train_accounts: list[str] = field(default_factory=list)
    val_accounts: list[str] = field(default_factory=list)
    interrupted: bool = False


def pick_device(choice: Device | str) -> torch.device:
    choice = Device(choice)
    if choice == Device.cuda and not torch.cuda.is_available():
        raise ImagionError(
            "--device cuda: no CUDA GPU is available here; use --device cpu or auto."
        )
    if choice == Device.cpu or not torch.cuda.is_available():
        return torch.device("cpu")
    rank = int(os.environ.get("LOCAL_RANK", 0))
    return torch.device("cuda", rank)


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per process, as torchrun numbers them
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _batches(
    n: int, batch: int, groups: np.ndarray, grouped: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffled batches; for the pairwise loss, posts of one account stay together."""
    if grouped:
        uniq = np.unique(groups)
        order_acc = rng.permutation(len(uniq))
        rank_of = np.empty(len(uniq), dtype=np.int64)
        rank_of[order_acc] = np.arange(len(uniq))
        key = rank_of[np.searchsorted(uniq, groups)]
        perm = np.lexsort((rng.random(n), key))
    else:
        perm = rng.permutation(n)
    return [perm[s : s + batch] for s in range(0, n, batch)]


def _loss(
    kind: Loss, pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    if kind == Loss.mse:
        return F.mse_loss(pred, target)
    return pairwise_loss(pred, target, group)


def train(catalog_path: Path, opts: TrainOptions, progress: Callable[[str, int, int, str], None] | None = None,
          log: Callable[[str], None] = lambda s: None) -> TrainResult:  # fmt: skip
    """Train and write `best.pt`, `last.pt` and `metrics.csv` into `opts.out`."""
    rank, world = _dist_info()
    device = pick_device(opts.device)
    if opts.epochs < 1 or opts.batch_size < 1 or opts.lr <= 0:
        raise ImagionError("--epochs and --batch-size must be ≥ 1 and --lr > 0.")
    out = Path(opts.out)
    if rank == 0:
        writable_folder(out, "--out")
        for name in ("best.pt", "last.pt") if out.exists() else ():
            if (out / name).is_dir():
                raise ImagionError(f"--out {out}: {name} is a folder; choose another --out.")
        removed = remove_stale_temporaries(out)
        if removed:
            log(f"removed {removed} temporary file(s) left in {out} by an interrupted run")
    resume_state = None
    if opts.resume:
        last = out / "last.pt"
        if not last.is_file():
            raise ImagionError(f"--resume: {last} does not exist; train without --resume first.")
        resume_state = read_checkpoint(last)
        if resume_state["arch"] != opts.arch:
            raise ImagionError(
                f"--resume: {last} is a {resume_state['arch']!r} run, not {opts.arch!r}."
            )
    cache = Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()

    with Catalog(catalog_path) as cat:
        df = training_frame(cat)
        score_settings = cat.get_meta("score_settings")
    if opts.accounts is not None:
        df = df[df["account"].isin(opts.accounts)].reset_index(drop=True)
    if opts.val_accounts is not None:
        val_acc = sorted(set(opts.val_accounts))
        train_acc = sorted(set(df["account"]) - set(val_acc))
    else:
        train_acc, val_acc = split_accounts(list(df["account"]), opts.val_fraction, opts.seed)

    torch.manual_seed(opts.seed)
    model = build_model(opts.arch, **opts.model_config())
    if resume_state is not None:
        model = model_from_checkpoint(resume_state, out / "last.pt", expect_arch=opts.arch)
    model.to(device)
    pre = model.preprocess
    frozen = frozen_backbone(model)

    images, ok, problems = load_images(
        df["image"].tolist(), df["image_sha256"].tolist(), pre.size, cache,
        progress=(lambda d, t: progress("decoding", d, t, "")) if progress and rank == 0 else None,
    )  # fmt: skip
    for p in problems:
        log(f"skipped: {p}")
    df = df[ok].reset_index(drop=True)
    images = images[ok]
    is_val = df["account"].isin(val_acc).to_numpy()
    tr = np.flatnonzero(~is_val)
    va = np.flatnonzero(is_val)
    if len(tr) < 2:
        raise ImagionError("fewer than 2 training images remain; import and score more posts.")
    groups = df["account"].astype("category").cat.codes.to_numpy().astype(np.int64)
    target = df["score"].to_numpy(dtype=np.float32)
    likes = df["likes"].to_numpy(dtype=np.float64)

    if frozen:
        x_all = compute_features(
            model, images, df["image_sha256"].tolist(), cache, device,
            progress=(lambda d, t: progress("features", d, t, "")) if progress and rank == 0 else None,
        ).to(device)  # fmt: skip
        net = model.head
    else:
        x_all = torch.from_numpy(images)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            x_all = x_all.to(device) if x_all.nbytes < 0.5 * free else x_all.pin_memory()
        model.to(memory_format=torch.channels_last)
        net = model
    del images
    y_all = torch.from_numpy(target).to(device)
    g_all = torch.from_numpy(groups).to(device)
    train_net: torch.nn.Module = net
    if world > 1:
        train_net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    step_net = torch.compile(train_net) if opts.compile else train_net
    params = [p for p in net.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    history: list[dict] = []
    start_epoch, best_acc, best_epoch, best_state = 0, -1.0, 0, None
    if resume_state is not None:
        optim.load_state_dict(resume_state["optimizer"])
        history = list(resume_state["history"])
        start_epoch = int(resume_state["epoch"])
        best_acc, best_epoch = float(resume_state["best_acc"]), int(resume_state["best_epoch"])
        best_state = resume_state.get("best_state")
    amp = device.type == "cuda"

    def inputs(idx: torch.Tensor | np.ndarray, augment: bool) -> torch.Tensor:
        idx_t = torch.as_tensor(idx, device=x_all.device)
        xb = x_all[idx_t]
        if frozen:
            return xb
        xb = xb.to(device, non_blocking=True)
        if augment:  # random horizontal flip, on the device
            flip = torch.rand(len(xb), device=device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(2), xb)
        return pre.normalize(xb)

    @torch.no_grad()
    def predict(idx: np.ndarray) -> np.ndarray:
        net.eval()
        outs = []
        for s in range(0, len(idx), 256):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                o = net(inputs(idx[s : s + 256], False))
            outs.append(o.float().reshape(-1).cpu())
        net.train()
        if frozen:
            model.backbone.eval()
        return torch.cat(outs).numpy() if outs else np.array([])

    run_meta = {
        "catalog": str(Path(catalog_path).resolve()),
        "score_settings": score_settings,
        "train_accounts": train_acc,
        "val_accounts": val_acc,
        "train_posts": len(tr),
        "val_posts": len(va),
        "skipped_images": len(problems),
        "split_seed": opts.seed,
        "val_fraction": opts.val_fraction,
        "options": {
            k: (str(v) if isinstance(v, Path | StrEnum) else v) for k, v in asdict(opts).items()
        },
        "command": " ".join(["imagion", *sys.argv[1:]]) if sys.argv else "",
        "world_size": world,
        "device": str(device),
    }
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    interrupted = False
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, opts.epochs):
            torch.manual_seed(opts.seed * 100_003 + epoch)
            rng = np.random.default_rng(opts.seed * 100_003 + epoch)
            batches = _batches(
                len(tr), opts.batch_size * world, groups[tr], opts.loss == Loss.pairwise, rng
            )
            net.train()
            if frozen:
                model.backbone.eval()
            t0, seen, total_loss = time.perf_counter(), 0, 0.0
            for b, batch in enumerate(batches):
                local = tr[batch][rank::world] if world > 1 else tr[batch]
                if len(local) == 0:
                    continue
                idx = torch.as_tensor(local, device=device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    pred = step_net(inputs(local, True)).float().reshape(-1)
                loss = _loss(opts.loss, pred, y_all[idx], g_all[idx])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                total_loss += float(loss.detach()) * len(local)
                seen += len(local)
                if progress and rank == 0:
                    rate = seen * world / max(time.perf_counter() - t0, 1e-9)
                    progress(f"epoch {epoch + 1}/{opts.epochs}", b + 1, len(batches),
                             f"loss {total_loss / seen:.4f} · {rate:,.0f} img/s")  # fmt: skip
            row = {"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1),
                   "images_per_s": seen * world / max(time.perf_counter() - t0, 1e-9)}  # fmt: skip
            if len(va):
                pv = predict(va)
                with torch.no_grad():
                    row["val_loss"] = float(_loss(opts.loss, torch.from_numpy(pv), torch.from_numpy(target[va]),
                                                  torch.from_numpy(groups[va])))  # fmt: skip
                row["val_pairwise_accuracy"] = pairwise_accuracy(pv, likes[va], groups[va])
            history.append(row)
            acc = row.get("val_pairwise_accuracy", float("nan"))
            if not len(va) or (np.isfinite(acc) and acc > best_acc) or best_state is None:
                best_acc, best_epoch = (acc if np.isfinite(acc) else best_acc), epoch + 1
                best_state = {
                    k: v.detach().cpu().clone() for k, v in trainable_state(model).items()
                }
            if rank == 0:
                last = checkpoint_payload(model, None, **run_meta, history=history, epoch=epoch + 1,
                                          optimizer=optim.state_dict(), best_acc=best_acc,
                                          best_epoch=best_epoch, best_state=best_state)  # fmt: skip
                save_checkpoint(out / "last.pt", last)
                _write_metrics(out / "metrics.csv", history)
            log_line = f"epoch {epoch + 1}: train loss {row['train_loss']:.4f}"
            if len(va):
                log_line += f", val loss {row['val_loss']:.4f}, val pairwise acc {acc:.3f}"
            log(log_line)
            if len(va) and epoch + 1 - best_epoch >= opts.patience:
                log(f"early stop: no better validation accuracy for {opts.patience} epochs")
                break
        epoch += 1
    except KeyboardInterrupt:
        interrupted = True
        log(f"interrupted: {out / 'last.pt'} holds epoch {len(history)}; continue with --resume")

    # the best model, calibrated on its own training predictions
    if best_state is not None:
        model.load_state_dict(best_state, strict=not frozen)
    raw_tr = predict(tr)
    i, j, _ = same_account_pairs(groups[tr], likes[tr])
    calib = Calibration.fit(
        raw_tr, (raw_tr[i] - raw_tr[j], (likes[tr][i] > likes[tr][j]).astype(float))
    )
    best_path = out / "best.pt"
    if rank == 0:
        metrics = {"best_epoch": best_epoch, "best_val_pairwise_accuracy": best_acc if len(va) else None,
                   "per_epoch": history}  # fmt: skip
        save_checkpoint(
            best_path, checkpoint_payload(model, calib, training=run_meta, metrics=metrics)
        )
    if world > 1:
        dist.barrier()
    return TrainResult(
        checkpoint=best_path, epochs_run=len(history), best_epoch=best_epoch,
        best_val_accuracy=best_acc if len(va) else None, history=copy.deepcopy(history),
        skipped_images=problems, train_posts=len(tr), val_posts=len(va),
        train_accounts=train_acc, val_accounts=val_acc, interrupted=interrupted,
    )  # fmt: skip


def _write_metrics(path: Path, history: list[dict]) -> None:
    keys = ["epoch", "train_loss", "val_loss", "val_pairwise_accuracy", "images_per_s"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
