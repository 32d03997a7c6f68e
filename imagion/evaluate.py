"""`imagion eval`: pairwise accuracy on same-account pairs, with honest statistics.

A pair is two posts of one account with different like counts; the model is right when it orders
them as their likes do. A predicted tie counts as half right (so a constant scorer gets exactly
50%). The 95% interval comes from a bootstrap over accounts, since pairs of one account are not
independent. Baselines are scored on the very same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imagion.errors import ImagionError
from imagion.pairs import pair_outcomes, same_account_pairs

REFERENCE_POINTS = {
    "seed model (2019)": 0.5024,
    "average person": 0.475,
    "expert": 0.675,
    "Ding et al. 2019, discriminable pairs": 0.76,
}


@dataclass
class EvalReport:
    accuracy: float
    ci95: tuple[float, float]
    pairs: int
    ties: int
    accounts: int
    baselines: dict[str, float]
    per_account: list[dict]
    spearman: float
    kendall: float
    examples: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "ci95": list(self.ci95),
            "pairs": self.pairs,
            "ties": self.ties,
            "accounts": self.accounts,
            "baselines": self.baselines,
            "spearman": self.spearman,
            "kendall": self.kendall,
            "reference_points": REFERENCE_POINTS,
            "per_account": self.per_account,
            "examples": self.examples,
            "notes": self.notes,
        }


def _rank_corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Spearman and Kendall (tau-b) correlation of two short vectors."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    spearman = float(np.corrcoef(ra, rb)[0, 1])
    i, j = np.triu_indices(len(a), k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = np.sqrt((sa != 0).sum() * (sb != 0).sum())
    kendall = float((sa * sb).sum() / denom) if denom else float("nan")
    return spearman, kendall


def bootstrap_ci(
    correct: np.ndarray, count: np.ndarray, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of sum(correct)/sum(count), resampling accounts with replacement."""
    if len(count) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(count), size=(reps, len(count)))
    c, n = correct[idx].sum(axis=1), count[idx].sum(axis=1)
    acc = c[n > 0] / n[n > 0]
    return float(np.quantile(acc, 0.025)), float(np.quantile(acc, 0.975))


def evaluate(
    df: pd.DataFrame,
    *,
    min_gap: float = 0.0,
    pairs: int | None = None,
    seed: int = 0,
    reps: int = 2000,
    show_pairs: int = 0,
) -> EvalReport:
    """Evaluate predictions `pred` against `likes` within `account`.

    `df` needs account, likes, pred; optional zscore (for min_gap), posted_at, caption, brightness,
    image. Rows with a missing prediction are ignored.
    """
    if pairs is not None and pairs < 1:
        raise ImagionError(f"--pairs {pairs}: sample at least 1 pair (or leave it out for all pairs).")
    if min_gap < 0 or not np.isfinite(min_gap):
        raise ImagionError(f"--min-gap {min_gap}: use a gap of 0 or more.")
    df = df[np.isfinite(df["pred"].to_numpy(dtype=float))].reset_index(drop=True)
    groups = df["account"].to_numpy()
    likes = df["likes"].to_numpy(dtype=np.float64)
    i, j, ties = same_account_pairs(groups, likes)
    if min_gap > 0:
        if "zscore" not in df or df["zscore"].isna().all():
            raise ImagionError("--min-gap needs standardized likes: run `imagion score` first.")
        z = df["zscore"].to_numpy(dtype=np.float64)
        keep = np.abs(z[i] - z[j]) >= min_gap
        i, j = i[keep], j[keep]
    if pairs is not None and pairs < len(i):
        pick = np.sort(np.random.default_rng(seed).choice(len(i), size=pairs, replace=False))
        i, j = i[pick], j[pick]
    if not len(i):
        raise ImagionError(
            "no same-account pairs with different likes to evaluate (need ≥ 2 posts per account)."
        )
    correct = pair_outcomes(df["pred"].to_numpy(dtype=np.float64), likes, i, j)
    codes, uniques = pd.factorize(groups[i])
    per_c = np.bincount(codes, weights=correct)
    per_n = np.bincount(codes).astype(np.float64)
    accuracy = float(correct.mean())
    baselines = {"chance": 0.5}
    candidates = {
        "newer wins": df.get("posted_at"),
        "longer caption wins": df["caption"].fillna("").str.len() if "caption" in df else None,
        "brighter wins": df.get("brightness"),
    }
    for name, col in candidates.items():
        if col is not None and col.notna().any():
            baselines[name] = float(
                pair_outcomes(col.to_numpy(dtype=np.float64, na_value=np.nan), likes, i, j).mean()
            )
    per_account = []
    spear, kend = [], []
    for k, acc in enumerate(uniques):
        rows = np.flatnonzero(groups == acc)
        s, t = _rank_corr(df["pred"].to_numpy(dtype=float)[rows], likes[rows])
        spear.append(s)
        kend.append(t)
        per_account.append({"account": str(acc), "posts": len(rows), "pairs": int(per_n[k]),
                            "accuracy": float(per_c[k] / per_n[k]), "spearman": s, "kendall": t})  # fmt: skip
    examples = []
    for k in range(min(show_pairs, len(i))):
        a, b = int(i[k]), int(j[k])
        examples.append({
            "account": str(groups[a]),
            "a": str(df["image"].iloc[a]) if "image" in df else a, "likes_a": int(likes[a]), "pred_a": float(df["pred"].iloc[a]),
            "b": str(df["image"].iloc[b]) if "image" in df else b, "likes_b": int(likes[b]), "pred_b": float(df["pred"].iloc[b]),
            "correct": bool(correct[k] == 1.0),
        })  # fmt: skip
    return EvalReport(
        accuracy=accuracy,
        ci95=bootstrap_ci(per_c, per_n, reps=reps, seed=seed),
        pairs=len(i),
        ties=ties,
        accounts=len(uniques),
        baselines=baselines,
        per_account=per_account,
        spearman=float(np.nanmean(spear)) if np.isfinite(spear).any() else float("nan"),
        kendall=float(np.nanmean(kend)) if np.isfinite(kend).any() else float("nan"),
        examples=examples,
    )


def cv_folds(accounts: list[str], k: int, seed: int) -> list[list[str]]:
    """Leave-accounts-out folds: every account in exactly one fold."""
    accounts = sorted(set(accounts))
    if k < 2 or k > len(accounts):
        raise ImagionError(f"--cv {k}: need 2 ≤ K ≤ number of accounts ({len(accounts)}).")
    order = [accounts[i] for i in np.random.default_rng(seed).permutation(len(accounts))]
    return [sorted(order[f::k]) for f in range(k)]


def catalog_posts(catalog_path) -> pd.DataFrame:
    from imagion.catalog import Catalog

    with Catalog(catalog_path) as cat:
        df = cat.frame("account, post_id, likes, likes_hidden, zscore, score, image, image_sha256, posted_at, caption",
                       "WHERE image IS NOT NULL AND likes IS NOT NULL AND likes_hidden = 0")  # fmt: skip
    if df.empty:
        raise ImagionError(
            f"{catalog_path}: no posts with an image and a like count to evaluate on."
        )
    return df


def predict_frame(
    loaded, df: pd.DataFrame, device, cache_dir=None, progress=None
) -> tuple[pd.DataFrame, list[str]]:
    from imagion.predict import predict_catalog

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

    from imagion.model import load_checkpoint
    from imagion.train import pick_device, train

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


def predict_checkpoint(catalog_path, model, *, accounts=None, held_out_only: bool = False, device="auto",
                       progress=None) -> tuple[pd.DataFrame, list[str], list[str], str]:  # fmt: skip
    """Predictions of a checkpoint (default: bundled) on the catalog's posts.

    Returns (frame with `pred`, skipped-image problems, warnings, a label for the report); warns
    loudly when the evaluated accounts include ones the checkpoint trained on.
    """
    from imagion.predict import open_model
    from imagion.train import pick_device

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
        notes.append(f"WARNING: the model was trained on {len(seen)} of these accounts "
                     f"({', '.join(seen[:5])}{'…' if len(seen) > 5 else ''}): this accuracy is NOT "
                     "an estimate for new posts; use --split val or --cv.")  # fmt: skip
    return df, problems, notes, f"model {loaded.path} ({loaded.arch})"
