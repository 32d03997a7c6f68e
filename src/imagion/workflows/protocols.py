"""Evaluation protocols: a checkpoint on the catalog's posts, K-fold leave-accounts-out
cross-validation and rolling-origin (time) cross-validation of a training recipe."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imagion.catalog.store import Catalog, Columns, no_scores_error
from imagion.choices import SplitKind
from imagion.errors import CatalogError, InputError, OptionError
from imagion.progress import Progress
from imagion.settings import pick_device
from imagion.training.options import Holdout
from imagion.training.split import time_blocks

MAX_TIME_BLOCKS = 1_000  # blocks per account in a rolling-origin CV

log = logging.getLogger(__name__).info  # the CLI shows these; Python: configure logging

if TYPE_CHECKING:
    from imagion.models.card import TrainingRecord
    from imagion.models.checkpoints import LoadedModel
    from imagion.training.options import TrainOptions


@dataclass
class Predictions:
    """A model's predictions on catalog posts: the frame (with `pred`), the images that could
    not be read, in-sample warnings, and what made them (for the report)."""

    frame: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    label: str = ""
    folds: list[list[str]] = field(default_factory=list)  # leave-accounts-out CV: its folds
    caveats: list[str] = field(default_factory=list)  # said with the report; not in-sample


def cv_folds(accounts: list[str], k: int, seed: int) -> list[list[str]]:
    """Leave-accounts-out folds: every account in exactly one fold."""
    accounts = sorted(set(accounts))
    if k < 2 or k > len(accounts):
        raise OptionError("cv", k, f"need 2 ≤ K ≤ the number of accounts ({len(accounts)}).")
    order = [accounts[i] for i in np.random.default_rng(seed).permutation(len(accounts))]
    return [sorted(order[f::k]) for f in range(k)]


def catalog_posts(catalog_path: Path) -> pd.DataFrame:
    with Catalog(catalog_path) as cat:
        df = cat.frame(
            Columns.EVALUATION,
            "WHERE image IS NOT NULL AND likes IS NOT NULL AND likes_hidden = 0",
        )
    if df.empty:
        raise CatalogError(
            f"{catalog_path}: no posts with an image and a like count to evaluate on."
        )
    return df


def predict_frame(
    loaded: LoadedModel,
    df: pd.DataFrame,
    device: Any,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """`df` with the model's raw output `pred`, its pair scale, its shown score `expected` and
    that score's 80% interval `low`–`high` (each row carries those of the model that predicted
    it) and the images' brightness (a baseline)."""
    from imagion.inference.torch_forward import predict_catalog

    raw, ok, bright, problems = predict_catalog(
        loaded, df["image"].tolist(), df["image_sha256"].tolist(), device, cache_dir, progress
    )
    if len(df) and not ok.any() and problems:  # say why, not "need ≥ 2 posts per account"
        raise InputError(f"no image of these posts could be read: {problems[0]}")
    df = df.copy()
    df["pred"] = raw
    scale = loaded.calibration.pair_scale
    df["pair_scale"] = np.nan if scale is None else scale
    cal = loaded.calibration  # each row's shown score and 80% interval, from its own model
    df["position"] = np.where(ok, cal.position(raw), np.nan)  # among its training outputs
    df["expected"] = np.where(ok, cal.score(raw), np.nan)
    band = cal.interval(raw)
    df["low"], df["high"] = (np.nan, np.nan) if band is None else (band[0], band[1])
    df["brightness"] = np.where(ok, bright, np.nan)
    return df, problems


def _scored(catalog_path: Path) -> pd.DataFrame:
    df = catalog_posts(catalog_path)
    df = df[df["score"].notna()].reset_index(drop=True)
    if df.empty:
        with Catalog(catalog_path) as cat:
            raise no_scores_error(cat)
    return df


def _fold(
    catalog_path: Path,
    fold_opts: TrainOptions,
    held: pd.DataFrame,
    fold: int,
    device: Any,
    progress: Progress | None,
    holdout: Holdout | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Train one model of a cross-validation and predict the posts it held out."""
    from imagion.models.checkpoints import load_checkpoint
    from imagion.training.loop import train

    result = train(catalog_path, fold_opts, progress=progress, holdout=holdout)
    part, problems = predict_frame(
        load_checkpoint(result.checkpoint, device), held, device, fold_opts.cache_dir
    )
    part["fold"] = fold
    return part, problems


def _named(accounts: list[str], shown: int = 5) -> str:
    """ "a, b" or "146 accounts (a, b, c, d, e, …)": a fold of a large crawl in one short line."""
    if len(accounts) <= shown:
        return ", ".join(accounts)
    return f"{len(accounts):,} accounts ({', '.join(accounts[:shown])}, …)"


def run_cv(
    catalog_path: Path,
    k: int,
    opts: TrainOptions,
    seed: int = 0,
    progress: Progress | None = None,
) -> Predictions:
    """Train one model per leave-accounts-out fold and pool the held-out predictions."""
    opts.check()
    df = _scored(catalog_path)
    folds = cv_folds(list(df["account"]), k, seed)
    _check_fold_folders([opts.out / f"fold{f + 1}" for f in range(len(folds))])
    device = pick_device(opts.device)
    parts, problems = [], []
    for f, held_out in enumerate(folds):
        log(f"fold {f + 1}/{k}: holding out {_named(held_out)}")
        train_accounts = sorted(set(df["account"]) - set(held_out))
        fold_opts = replace(
            opts, out=opts.out / f"fold{f + 1}", accounts=train_accounts, resume=False
        )
        held = df[df["account"].isin(held_out)]
        part, probs = _fold(catalog_path, fold_opts, held, f + 1, device, progress)
        parts.append(part)
        problems += probs
    return Predictions(pd.concat(parts, ignore_index=True), problems, folds=folds)


def _check_fold_folders(folders: list[Path]) -> None:
    """Every fold's run folder, before the first fold trains: a file of the user's in the last
    one is said now, not after the other folds' work."""
    from imagion.training.writer import check_run_files

    for folder in folders:
        check_run_files(folder)


def run_time_cv(
    catalog_path: Path,
    k: int,
    opts: TrainOptions,
    progress: Progress | None = None,
) -> Predictions:
    """Rolling origin: each account's dated posts in time order, cut into k blocks; block b is
    predicted by a model trained on blocks 0..b−1 (of every account). Pooled predictions."""
    opts.check()
    if not 2 <= k <= MAX_TIME_BLOCKS:
        raise OptionError(
            "time_blocks", k, f"use 2 to {MAX_TIME_BLOCKS} blocks per account (e.g. 4)."
        )
    df = _scored(catalog_path)
    block = time_blocks(df, k)
    sizes = df[block >= 0].groupby("account").size()
    if sizes.empty or sizes.max() < 2 * k:
        most = 0 if sizes.empty else int(sizes.max())
        raise CatalogError(
            f"`cv` time with {k} blocks needs at least {2 * k} dated posts in one "
            f"account (2 per block); the largest account here has {most}."
        )
    undated = int((block < 0).sum())
    if undated:
        log(f"`cv` time: {undated} post(s) without a date are left out")
    _check_fold_folders([opts.out / f"block{b + 1}" for b in range(1, k)])
    device = pick_device(opts.device)
    parts, problems = [], []
    for b in range(1, k):
        past = df[(block >= 0) & (block < b)]
        cutoff = {str(a): int(t) for a, t in past.groupby("account")["posted_at"].max().items()}
        log(f"block {b + 1}/{k}: trained on the {len(past)} posts before it")
        # fixed epochs: the few posts before a block are all needed for training
        fold_opts = replace(
            opts,
            out=opts.out / f"block{b + 1}",
            resume=False,
            accounts=sorted(cutoff),
            split=SplitKind.time,
            val_fraction=0.0,
        )
        held = df[block == b]
        holdout = Holdout(cutoff=cutoff)  # the posts after the cut are never trained on
        part, probs = _fold(catalog_path, fold_opts, held, b + 1, device, progress, holdout)
        parts.append(part)
        problems += probs
    return Predictions(pd.concat(parts, ignore_index=True), problems)


def held_out_mask(df: pd.DataFrame, training: TrainingRecord | None) -> np.ndarray:
    """Posts the checkpoint did not train on: accounts it never saw and, for a time split,
    posts after the last training post of their account (everything, without a record)."""
    if training is None:
        return np.ones(len(df), dtype=bool)
    seen = df["account"].isin(training.train_accounts).to_numpy()
    if training.split != SplitKind.time:
        return ~seen
    last = df["account"].map(lambda a: training.time_range(a)[1]).astype(float).to_numpy()
    t = df["posted_at"].astype(float).to_numpy()
    newer = np.isfinite(t) & (~np.isfinite(last) | (t > np.nan_to_num(last, nan=np.inf)))
    return ~seen | newer


def range_fitted_mask(df: pd.DataFrame, training: TrainingRecord | None) -> np.ndarray:
    """Posts the checkpoint's score range (and win probability) was fitted on: its validation
    posts (held-out accounts, or each account's newest posts for a time split). A card written
    before the validation times were recorded marks every newer post of a seen account."""
    if training is None or not training.val_posts:
        return np.zeros(len(df), dtype=bool)
    if training.split != SplitKind.time:
        return df["account"].isin(training.val_accounts).to_numpy()
    t = df["posted_at"].astype(float).to_numpy()
    if not training.val_time_range:
        return df["account"].isin(training.train_accounts).to_numpy()
    span = df["account"].map(lambda a: training.val_time_range.get(a) or [None, None])
    lo = np.array([np.nan if s[0] is None else float(s[0]) for s in span])
    hi = np.array([np.nan if s[1] is None else float(s[1]) for s in span])
    return (
        np.isfinite(t)
        & (t >= np.nan_to_num(lo, nan=np.inf))
        & (t <= np.nan_to_num(hi, nan=-np.inf))
    )


def predict_checkpoint(
    catalog_path: Path,
    model: Path | None,
    *,
    accounts: list[str] | None = None,
    held_out_only: bool = False,
    same_posts_as: Path | None = None,
    device: str = "auto",
    progress: Progress | None = None,
) -> Predictions:
    """Predictions of a checkpoint (default: bundled) on the catalog's posts; warns loudly when
    the evaluated posts include ones the checkpoint trained on. `same_posts_as`: only the posts
    another checkpoint did not train on (before/after on the same posts and pairs)."""
    from imagion.models.checkpoints import open_model, read_card

    dev = pick_device(device)
    loaded = open_model(model, dev)
    training = loaded.card.training
    df = catalog_posts(catalog_path)
    if accounts:
        df = df[df["account"].isin(accounts)]
    caveats = []
    if same_posts_as is not None:
        other = read_card(same_posts_as).training
        if other is None:
            raise OptionError(
                "same_posts_as", same_posts_as, "this checkpoint records no training posts."
            )
        df = df[held_out_mask(df, other)]
        caveats.append(
            f"evaluated on the {len(df)} posts {same_posts_as} did not train on, so the "
            "figures compare with its own `split` val (or time) figures pair for pair."
        )
    elif held_out_only and (
        training is None or not df["account"].isin(training.train_accounts).any()
    ):
        caveats.append(
            f"this model trained on none of these accounts: all {len(df)} posts are held out. "
            "To compare it with a model of yours on that model's held-out posts (the same "
            "pairs), give `same_posts_as` its checkpoint."
        )
    if held_out_only:
        df = df[held_out_mask(df, training)]
        if df.empty:
            raise CatalogError(
                f"{loaded.path}: none of these posts was held out from its training "
                "(no unseen account, no newer post); import newer posts or use `cv`."
            )
    if df.empty:
        raise CatalogError("no posts of the chosen accounts in the catalog.")
    df, problems = predict_frame(loaded, df, dev, progress=progress)
    df["range_fitted"] = range_fitted_mask(df, training)  # its coverage is no measure there
    trained_on = int((~held_out_mask(df, training)).sum()) if training else 0
    notes = []
    if trained_on:
        notes.append(
            f"WARNING: the model trained on {trained_on} of these {len(df)} posts: this accuracy is "
            "NOT an estimate for new posts; use `split` val (or time) or `cv`."
        )
    held_out = len(df) - trained_on
    if training and training.val_posts and held_out:
        caveats.append(
            f"the {held_out} posts it did not train on include the {training.val_posts} that "
            "chose its best epoch and fitted its score range and win probability, so these "
            "figures lean optimistic; `cv` (or `cv` time) measures the recipe on posts nothing "
            "was fitted on."
        )
    label = f"model {loaded.path} ({loaded.arch})"
    return Predictions(df, problems, notes, label, caveats=caveats)
