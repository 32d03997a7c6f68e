"""Which posts train and which validate: the catalog's scored posts and the split by account."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imagion.catalog.store import Catalog, Columns, no_scores_error
from imagion.errors import CatalogError, OptionError


def training_frame(catalog: Catalog) -> pd.DataFrame:
    """Scored posts with an image, ordered by account and time."""
    df = catalog.frame(
        Columns.TRAINING,
        "WHERE image IS NOT NULL",
    )
    if df.empty:
        raise CatalogError(
            f"{catalog.path}: no posts with an image; import an instaloader folder or CSV."
        )
    scored = df[df["score"].notna()]
    if scored.empty:
        raise no_scores_error(catalog)
    return scored.reset_index(drop=True)


def split_accounts(
    accounts: list[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Seeded split by account: validation accounts are never seen in training."""
    accounts = sorted(set(accounts))
    if not 0.0 <= val_fraction < 1.0:
        raise OptionError("val_fraction", val_fraction, "use a share in [0, 1).")
    if val_fraction == 0:
        return accounts, []
    if len(accounts) < 2:
        raise CatalogError(
            f"only {len(accounts)} account(s) with scored images: a split by account needs at least 2 "
            "(or use `val_fraction` 0 to train on all without validation)."
        )
    rng = np.random.default_rng(seed)
    order = [accounts[i] for i in rng.permutation(len(accounts))]
    n_val = min(len(accounts) - 1, max(1, round(len(accounts) * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


MIN_TIME_POSTS = 4  # per account: 2 older posts to train on, 2 newer ones to validate on


def split_by_time(df: pd.DataFrame, val_fraction: float) -> tuple[np.ndarray, int]:
    """Within each account, the newest `val_fraction` of its dated posts validate, the older
    ones train (a post tied in time with the first validation post validates too, so no moment
    is on both sides). Works with a single account.

    Returns (is_val per row of df, posts without a date, which are excluded: is_val is then
    meaningless for them and the caller drops them)."""
    if not 0.0 <= val_fraction < 1.0:
        raise OptionError("val_fraction", val_fraction, "use a share in [0, 1).")
    is_val = np.zeros(len(df), dtype=bool)
    dated = df["posted_at"].notna().to_numpy()
    if val_fraction == 0:
        return is_val, int((~dated).sum())
    best = 0
    for _, rows in df[dated].groupby("account", sort=False):
        order = rows.sort_values(["posted_at", "post_id"], kind="stable")
        n = len(order)
        best = max(best, n)
        n_val = min(n - 2, max(2, round(n * val_fraction))) if n >= MIN_TIME_POSTS else 0
        if n_val <= 0:
            continue
        boundary = order["posted_at"].iloc[n - n_val]
        is_val[order.index[order["posted_at"].to_numpy() >= boundary]] = True
    if not is_val.any():
        raise CatalogError(
            f"`split` time needs at least {MIN_TIME_POSTS} dated posts in one account (2 older to train "
            f"on, 2 newer to validate); the largest account here has {best}."
        )
    return is_val, int((~dated).sum())


def time_blocks(df: pd.DataFrame, k: int) -> np.ndarray:
    """Rolling-origin blocks: each account's dated posts in time order, cut into k blocks
    (0 = oldest); -1 for posts without a date."""
    block = np.full(len(df), -1, dtype=np.int64)
    dated = df["posted_at"].notna().to_numpy()
    for _, rows in df[dated].groupby("account", sort=False):
        order = rows.sort_values(["posted_at", "post_id"], kind="stable").index.to_numpy()
        block[order] = (np.arange(len(order)) * k) // len(order)
    return block
