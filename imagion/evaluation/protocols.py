"""Evaluation protocols: a checkpoint on the catalog's posts, and K-fold leave-accounts-out
cross-validation of a training recipe (pooled held-out predictions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imagion.errors import ImagionError
from imagion.settings import pick_device


def cv_folds(accounts: list[str], k: int, seed: int) -> list[list[str]]:
    """Leave-accounts-out folds: every account in exactly one fold."""
    accounts = sorted(set(accounts))
    if k < 2 or k > len(accounts):
        raise ImagionError(f"--cv {k}: need 2 ≤ K ≤ number of accounts ({len(accounts)}).")
    order = [accounts[i] for i in np.random.default_rng(seed).permutation(len(accounts))]
    return [sorted(order[f::k]) for f in range(k)]


def catalog_posts(catalog_path) -> pd.DataFrame:
    from imagion.catalog.store import Catalog

    with Catalog(catalog_path) as cat:
        df = cat.frame(
            "account, post_id, likes, likes_hidden, zscore, score, image, image_sha256, posted_at, caption",
            "WHERE image IS NOT NULL AND likes IS NOT NULL AND likes_hidden = 0",
        )
    if df.empty:
        raise ImagionError(
            f"{catalog_path}: no posts with an image and a like count to evaluate on."
        )
    return df


def predict_frame(
    loaded, df: pd.DataFrame, device, cache_dir=None, progress=None
) -> tuple[pd.DataFrame, list[str]]:
    from imagion.inference.torch_forward import predict_catalog

    raw, ok, bright, problems = predict_catalog(
        loaded, df["image"].tolist(), df["image_sha256"].tolist(), device, cache_dir, progress
    )
    df = df.copy()
    df["pred"] = raw
    df["brightness"] = np.where(ok, bright, np.nan)
    return df, problems


def run_cv(catalog_path, k: int, opts, seed: int = 0, progress=None, log=lambda s: None):
    """Train one model per leave-accounts-out fold and pool the held-out predictions."""
    from dataclasses import replace

    from imagion.models.checkpoints import load_checkpoint
    from imagion.training.loop import train

    df = catalog_posts(catalog_path)
    df = df[df["score"].notna()].reset_index(drop=True)
    if df.empty:
        raise ImagionError(f"{catalog_path}: no scored posts; run `imagion score` first.")
    folds = cv_folds(list(df["account"]), k, seed)
    device = pick_device(opts.device)
    parts, problems = [], []
    for f, held_out in enumerate(folds):
        log(f"fold {f + 1}/{k}: holding out {', '.join(held_out)}")
        train_accounts = sorted(set(df["account"]) - set(held_out))
        fold_opts = replace(
            opts, out=opts.out / f"fold{f + 1}", accounts=train_accounts, resume=False
        )
        result = train(catalog_path, fold_opts, progress=progress, log=log)
        loaded = load_checkpoint(result.checkpoint, device)
        part, probs = predict_frame(
            loaded, df[df["account"].isin(held_out)], device, opts.cache_dir
        )
        part["fold"] = f + 1
        parts.append(part)
        problems += probs
    return pd.concat(parts, ignore_index=True), folds, problems


def predict_checkpoint(
    catalog_path, model, *, accounts=None, held_out_only: bool = False, device="auto", progress=None
) -> tuple[pd.DataFrame, list[str], list[str], str]:
    """Predictions of a checkpoint (default: bundled) on the catalog's posts.

    Returns (frame with `pred`, skipped-image problems, warnings, a label for the report); warns
    loudly when the evaluated accounts include ones the checkpoint trained on.
    """
    from imagion.models.checkpoints import open_model

    dev = pick_device(device)
    loaded = open_model(model, dev)
    training = loaded.meta.get("training") or {}
    df = catalog_posts(catalog_path)
    if held_out_only:
        held = training.get("val_accounts") or []
        if not held:
            raise ImagionError(
                f"{loaded.path}: this checkpoint held out no accounts; use --accounts."
            )
        df = df[df["account"].isin(held)]
    if accounts:
        df = df[df["account"].isin(accounts)]
    if df.empty:
        raise ImagionError("no posts of the chosen accounts in the catalog.")
    df, problems = predict_frame(loaded, df, dev, progress=progress)
    seen = sorted(set(df["account"]) & set(training.get("train_accounts") or []))
    notes = []
    if seen:
        notes.append(
            f"WARNING: the model was trained on {len(seen)} of these accounts "
            f"({', '.join(seen[:5])}{'…' if len(seen) > 5 else ''}): this accuracy is NOT "
            "an estimate for new posts; use --split val or --cv."
        )
    return df, problems, notes, f"model {loaded.path} ({loaded.arch})"
