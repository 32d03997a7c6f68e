"""Everything a training run needs before its first step: the posts, the split, the decoded
images (or a frozen backbone's features) as tensors on the device."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from imagion.catalog.store import Catalog
from imagion.choices import SplitKind
from imagion.errors import CatalogError
from imagion.models.caches import frozen_features, load_images
from imagion.models.networks import ImagionModel
from imagion.progress import Progress, in_stage
from imagion.training.options import Holdout, TrainOptions
from imagion.training.split import split_accounts, split_by_time, training_frame


def distributed() -> tuple[int, int]:
    """(rank, world size): torchrun's processes join one group (NCCL on GPUs, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per process, as torchrun numbers them
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


@dataclass
class SplitFrame:
    """The catalog's posts for this run and which of them validate (`frame.is_val`)."""

    frame: pd.DataFrame
    kind: str  # "account" or "time"
    train_accounts: list[str]
    val_accounts: list[str]  # accounts with validation posts
    score_settings: str | None
    undated: int = 0  # posts left out by --split time for lack of a date

    def train_time_range(self) -> dict[str, list[int]]:
        """Per account, the first and last time of its training posts (dated ones)."""
        return self._time_range(~self.frame["is_val"])

    def val_time_range(self) -> dict[str, list[int]]:
        """Per account, the first and last time of its validation posts (dated ones): the
        posts its score range and win probability were fitted on."""
        return self._time_range(self.frame["is_val"].astype(bool))

    def _time_range(self, rows: pd.Series) -> dict[str, list[int]]:
        part = self.frame[rows & self.frame["posted_at"].notna()]
        span = part.groupby("account")["posted_at"].agg(["min", "max"])
        return {str(a): [int(r["min"]), int(r["max"])] for a, r in span.iterrows()}


def read_split(
    catalog_path: Path, opts: TrainOptions, holdout: Holdout | None = None
) -> SplitFrame:
    """The catalog's scored posts with an image, split for training and validation."""
    holdout = holdout or Holdout()
    with Catalog(catalog_path) as cat:
        df = training_frame(cat)
        score_settings = cat.get_meta("score_settings")
    if opts.accounts is not None:
        missing = sorted(set(opts.accounts) - set(df["account"]))
        if missing:
            raise CatalogError(
                f"`account` {', '.join(missing)}: no scored post with an image of that account in {catalog_path}."
            )
        df = df[df["account"].isin(opts.accounts)].reset_index(drop=True)
    if holdout.cutoff is not None:  # rolling-origin CV: only the posts before the predicted block
        last = df["account"].map(holdout.cutoff).astype(float)
        df = df[df["posted_at"].notna() & (df["posted_at"] <= last)].reset_index(drop=True)
    undated = 0
    if opts.split == SplitKind.time:
        is_val, undated = split_by_time(df, opts.val_fraction)
        df = df.assign(is_val=is_val)[df["posted_at"].notna().to_numpy()].reset_index(drop=True)
    else:
        if holdout.val_accounts is not None:
            val_acc = sorted(set(holdout.val_accounts))
        else:
            val_acc = split_accounts(list(df["account"]), opts.val_fraction, opts.seed)[1]
        df = df.assign(is_val=df["account"].isin(val_acc).to_numpy())
    train_acc = sorted(set(df.loc[~df["is_val"], "account"]))
    val_acc = sorted(set(df.loc[df["is_val"], "account"]))
    return SplitFrame(df, opts.split, train_acc, val_acc, score_settings, undated)


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
    posts: int = -1  # rows below this are posts; rows from here on are tone-augmented copies

    def __post_init__(self) -> None:
        if self.posts < 0:
            self.posts = len(self.target)

    @property
    def train_posts(self) -> np.ndarray:
        """The training rows that are posts (not augmented copies)."""
        return self.train_idx[self.train_idx < self.posts]


def load_training_data(
    split: SplitFrame,
    model: ImagionModel,
    device: torch.device,
    cache: Path,
    progress: Progress | None,
    augment: int = 0,
) -> TrainingData:
    """Decode (cached) every image once; a frozen backbone's features are computed once too
    (and those of `opts.tone_augment` tone-varied copies of each training image)."""
    df = split.frame
    paths, shas = df["image"].tolist(), df["image_sha256"].tolist()
    if model.frozen:
        feats = frozen_features(
            model,
            paths,
            shas,
            cache,
            device,
            progress=in_stage(progress, "features"),
        )
        ok, problems, x = feats.ok, feats.problems, feats.x[feats.ok]
    else:
        images, ok, problems = load_images(
            paths,
            shas,
            model.preprocess.size,
            cache,
            progress=in_stage(progress, "decoding"),
        )
        x = torch.from_numpy(images[ok])
        if device.type == "cuda":  # the whole uint8 set on the GPU when it fits
            free, _ = torch.cuda.mem_get_info(device)
            x = x.to(device) if x.nbytes < 0.5 * free else x.pin_memory()
    df = df[ok].reset_index(drop=True)
    is_val = df["is_val"].to_numpy(dtype=bool)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(tr) < 2:
        unread = f" ({problems[0]})" if problems else ""
        raise CatalogError(
            f"fewer than 2 training images remain{unread}; import and score more posts."
        )
    groups = df["account"].astype("category").cat.codes.to_numpy().astype(np.int64)
    target = df["score"].to_numpy(dtype=np.float32)
    likes = df["likes"].to_numpy(dtype=np.float64)
    posts = len(target)
    if model.frozen and augment:
        x, tr, target, likes, groups = _with_augmented_copies(
            model, df, tr, x, target, likes, groups, augment, device, cache, progress
        )
    if model.frozen:
        x = x.to(device)
    return TrainingData(
        x=x,
        target=target,
        likes=likes,
        groups=groups,
        train_idx=tr,
        val_idx=va,
        problems=problems,
        posts=posts,
    )


def _with_augmented_copies(
    model: ImagionModel,
    df: pd.DataFrame,
    tr: np.ndarray,
    x: torch.Tensor,
    target: np.ndarray,
    likes: np.ndarray,
    groups: np.ndarray,
    copies: int,
    device: torch.device,
    cache: Path,
    progress: Progress | None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Append the features of `copies` tone-augmented copies of each training image: extra
    training rows with the post's target, likes and account (validation rows stay unaugmented)."""
    xs, trs = [x], [tr]
    paths, shas = df["image"].to_numpy()[tr].tolist(), df["image_sha256"].to_numpy()[tr].tolist()
    n = len(df)
    for k in range(1, copies + 1):
        report = _copy_progress(progress, k)
        feats = frozen_features(
            model,
            paths,
            shas,
            cache,
            device,
            progress=report,
            augment=k,
        )
        keep = np.flatnonzero(feats.ok)
        xs.append(feats.x[keep])
        trs.append(n + np.arange(len(keep)))
        n += len(keep)
        target = np.concatenate([target, target[tr[keep]]])
        likes = np.concatenate([likes, likes[tr[keep]]])
        groups = np.concatenate([groups, groups[tr[keep]]])
    return torch.cat(xs), np.concatenate(trs), target, likes, groups


def _copy_progress(progress: Progress | None, k: int) -> Progress | None:
    return in_stage(progress, f"tone copy {k}")


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
