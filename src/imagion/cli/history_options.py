"""--history, --account and --similar of rank, compare and pick, and how a photo's past posts
are shown (one table cell, flat CSV columns)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from imagion.errors import ImagionError
from imagion.inference.history import K_SIMILAR, posted_words, similar_words
from imagion.inference.past_posts import PastPost
from imagion.scores import score_text

PANEL = "Your past posts"
HistoryOpt = Annotated[
    Path | None,
    typer.Option(
        help="A catalog of your posts (imagion import + score): each photo gets your most similar past posts and how they scored, and is named when you already posted it.",
        rich_help_panel=PANEL,
    ),
]
AccountOpt = Annotated[
    str | None,
    typer.Option(
        help="With --history: whose posts, when the catalog holds several accounts.",
        rich_help_panel=PANEL,
    ),
]
SimilarOpt = Annotated[
    int,
    typer.Option(
        min=1, help="With --history: similar past posts per photo.", rich_help_panel=PANEL
    ),
]
CSV_FIELDS = ["similar_scores", "similar_post_ids", "already_posted", "already_posted_on"]


def history_given(history: Path | None, account: str | None, similar: int) -> None:
    """--account and --similar go with --history (said, not silently ignored)."""
    if history is None and (account is not None or similar != K_SIMILAR):
        raise ImagionError("--account and --similar go with --history.")


def _date(post: Mapping[str, Any]) -> str:
    return str(post.get("posted_at") or "")[:10]


def history_cell(row: Mapping[str, Any]) -> str:
    """'you already posted this on 12 May 2023; it scored 3.2', else 'like your posts that
    scored 7.4 · 6.9 · 6.1' (empty without a history)."""

    def past(d: Mapping[str, Any]) -> PastPost:
        when = d.get("posted_at")
        t = None if when is None else int(dt.datetime.fromisoformat(str(when)).timestamp())
        return PastPost(
            str(d["account"]), str(d["post_id"]), t, float(d["score"]), 0.0, str(d["image"])
        )

    if "already_posted" in row:
        return posted_words(past(row["already_posted"]))
    return similar_words([past(p) for p in row.get("similar_posts", [])])


def csv_cells(row: Mapping[str, Any]) -> dict[str, str]:
    """The flat CSV columns of a row's past posts."""
    posts = row.get("similar_posts", [])
    done = row.get("already_posted")
    return {
        "similar_scores": " · ".join(score_text(p["score"]) for p in posts),
        "similar_post_ids": " · ".join(str(p["post_id"]) for p in posts),
        "already_posted": str(done["post_id"]) if done else "",
        "already_posted_on": _date(done) if done else "",
    }
