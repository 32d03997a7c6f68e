"""`eval`'s history opinion: every evaluated post judged from the earlier scored posts of its
account (their features from the bundled engine, as `rank --history` computes and caches them),
beside the model on the same pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagion.evaluation.history_opinion import measure_opinion, past_opinions
from imagion.evaluation.metrics import MIN_JUDGED_PAIRS, EvalReport
from imagion.inference.engine import open_engine
from imagion.inference.history import entry_features, post_entries
from imagion.progress import Progress
from imagion.workflows.protocols import catalog_posts


def add_history_opinion(
    report: EvalReport, catalog: Path, progress: Progress | None = None
) -> EvalReport:
    """`report.history` (and the frame's `opinion` column), when the report has its frame."""
    frame, table = report.frame, report.pairs_table
    if frame is None or table is None or frame.empty:
        return report
    posts = catalog_posts(catalog)
    posts = posts[posts["score"].notna() & posts["account"].isin(set(frame["account"]))]
    posts = posts.reset_index(drop=True)
    engine = open_engine(None, "cpu")
    entries, _ = post_entries(
        engine, posts["image"].tolist(), posts["image_sha256"].tolist(), progress=progress
    )
    keep = posts["image_sha256"].isin(set(entries)).to_numpy()
    posts = posts[keep].reset_index(drop=True)
    if posts.empty:
        return report
    feats = entry_features([entries[s] for s in posts["image_sha256"]])
    times = posts["posted_at"].to_numpy(dtype=np.float64)
    opinion = past_opinions(feats, posts["score"].to_numpy(), times, posts["account"].to_numpy())
    by_image = dict(zip(posts["image"].astype(str), opinion, strict=True))
    frame["opinion"] = [by_image.get(str(i), np.nan) for i in frame["image"]]
    report.history = measure_opinion(frame, table, min_pairs=MIN_JUDGED_PAIRS)
    return report
