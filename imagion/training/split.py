"""Which posts train and which validate: the catalog's scored posts and the split by account."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imagion.catalog.store import Catalog
from imagion.errors import ImagionError


def training_frame(catalog: Catalog) -> pd.DataFrame:
    """Scored posts with an image, ordered by account and time."""
    df = catalog.frame(
        "id, account, post_id, likes, zscore, score, image, image_sha256, posted_at, caption",
        "WHERE image IS NOT NULL",
    )
    if df.empty:
        raise ImagionError(
            f"{catalog.path}: no posts with an image; import an instaloader folder or CSV."
        )
    scored = df[df["score"].notna()]
    if scored.empty:
        raise ImagionError(f"{catalog.path}: no post has a score yet; run `imagion score` first.")
    return scored.reset_index(drop=True)


def split_accounts(
    accounts: list[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Seeded split by account: validation accounts are never seen in training."""
    accounts = sorted(set(accounts))
    if not 0.0 <= val_fraction < 1.0:
        raise ImagionError("--val-fraction must be in [0, 1).")
    if val_fraction == 0:
        return accounts, []
    if len(accounts) < 2:
        raise ImagionError(
            f"only {len(accounts)} account(s) with scored images: a split by account needs at least 2 "
            "(or use --val-fraction 0 to train on all without validation)."
        )
    rng = np.random.default_rng(seed)
    order = [accounts[i] for i in rng.permutation(len(accounts))]
    n_val = min(len(accounts) - 1, max(1, round(len(accounts) * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])
