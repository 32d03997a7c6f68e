"""Everything a training run needs before its first step: the posts, the split, the decoded
images (or a frozen backbone's features) as tensors on the device."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from imagion.catalog.store import Catalog
from imagion.errors import ImagionError
from imagion.models.caches import compute_features, load_images
from imagion.models.networks import ImagionModel
from imagion.training.options import TrainOptions
from imagion.training.split import split_accounts, training_frame

Progress = Callable[[str, int, int, str], None]


def distributed() -> tuple[int, int]:
    """(rank, world size): torchrun's processes join one group (NCCL on GPUs, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per process, as torchrun numbers them
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


@dataclass
class Split:
    """The catalog's posts for this run and who trains on what."""

    frame: pd.DataFrame
    train_accounts: list[str]
    val_accounts: list[str]
    score_settings: str | None


def read_split(catalog_path: Path, opts: TrainOptions) -> Split:
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
    return Split(df, train_acc, val_acc, score_settings)


@dataclass
class TrainingData:
    """Inputs (uint8 images, or features of a frozen backbone) and targets, indexed by post."""

    x: torch.Tensor
    target: np.ndarray  # 0–10 scores
    likes: np.ndarray
    groups: np.ndarray  # account codes
    train_idx: np.ndarray
    val_idx: np.ndarray
    problems: list[str]


def load_training_data(
    split: Split,
    model: ImagionModel,
    device: torch.device,
    cache: Path,
    progress: Progress | None,
) -> TrainingData:
    """Decode (cached) every image once; a frozen backbone's features are computed once too."""
    df = split.frame
    images, ok, problems = load_images(
        df["image"].tolist(),
        df["image_sha256"].tolist(),
        model.preprocess.size,
        cache,
        progress=(lambda d, t: progress("decoding", d, t, "")) if progress else None,
    )
    df = df[ok].reset_index(drop=True)
    images = images[ok]
    is_val = df["account"].isin(split.val_accounts).to_numpy()
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(tr) < 2:
        raise ImagionError("fewer than 2 training images remain; import and score more posts.")
    if model.frozen:
        x = compute_features(
            model,
            images,
            df["image_sha256"].tolist(),
            cache,
            device,
            progress=(lambda d, t: progress("features", d, t, "")) if progress else None,
        ).to(device)
    else:
        x = torch.from_numpy(images)
        if device.type == "cuda":  # the whole uint8 set on the GPU when it fits
            free, _ = torch.cuda.mem_get_info(device)
            x = x.to(device) if x.nbytes < 0.5 * free else x.pin_memory()
    return TrainingData(
        x=x,
        target=df["score"].to_numpy(dtype=np.float32),
        likes=df["likes"].to_numpy(dtype=np.float64),
        groups=df["account"].astype("category").cat.codes.to_numpy().astype(np.int64),
        train_idx=tr,
        val_idx=va,
        problems=problems,
    )


def shuffled_batches(
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
