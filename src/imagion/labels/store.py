"""Labels in the catalog: which items still need labels, saving them batch by batch (so nothing
is computed, or paid, twice), and the labelled posts for the statistics.

Labels are keyed by `item`: the image SHA-256 for image providers (google, local), and
`post:<account>/<post_id>` for post providers (instagram alt text, hashtags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

from imagion.catalog.store import Catalog, Columns, no_scores_error
from imagion.choices import Provider
from imagion.errors import CatalogError, OptionError
from imagion.labels.cloud_vision import DEFAULT_CONCURRENCY, label_images
from imagion.labels.offline import local_labels
from imagion.labels.providers import IMAGE_PROVIDERS, parse_alt_text
from imagion.models.imagenet import SEEN_THRESHOLD
from imagion.progress import Progress


def item_key(provider: Provider, account: str, post_id: str, image_sha256: object) -> str | None:
    """The one rule for what a label is attached to."""
    if provider in IMAGE_PROVIDERS:
        return image_sha256 if isinstance(image_sha256, str) else None
    return f"post:{account}/{post_id}"


def labelled_items(catalog: Catalog, provider: Provider) -> set[str]:
    rows = catalog.db.execute("SELECT item FROM labelled WHERE provider=?", (str(provider),))
    return {k for (k,) in rows}


def label_items(catalog: Catalog, provider: Provider) -> list[tuple[str, Any]]:
    """(key, row) of every post this provider can label (one per distinct key)."""
    where = "WHERE image IS NOT NULL" if provider in IMAGE_PROVIDERS else ""
    df = catalog.frame(Columns.LABELLING, where)
    out: dict[str, Any] = {}
    for row in df.itertuples():
        key = item_key(provider, row.account, row.post_id, row.image_sha256)
        if key and key not in out:
            out[key] = row
    return list(out.items())


def pending(
    catalog: Catalog, provider: Provider, refresh: bool = False
) -> tuple[list[tuple[str, Any]], int]:
    """(key, row) of every post that still needs labels from this provider, and how many
    items already have them (the one "still to label" query)."""
    items = label_items(catalog, provider)
    done = set() if refresh else labelled_items(catalog, provider)
    todo = [(k, r) for k, r in items if k not in done]
    return todo, len(items) - len(todo)


def store_labels(
    catalog: Catalog, provider: Provider, keyed: dict[str, list[tuple[str, float]]]
) -> None:
    """Save the labels of some items (and mark them labelled) in one transaction."""
    with catalog.transaction() as db:
        for key, labels in keyed.items():
            db.execute("DELETE FROM labels WHERE item=? AND provider=?", (key, str(provider)))
            db.executemany(
                "INSERT OR REPLACE INTO labels (item, provider, label, confidence) VALUES (?, ?, ?, ?)",
                [(key, str(provider), label, conf) for label, conf in labels],
            )
            db.execute(
                "INSERT OR REPLACE INTO labelled (item, provider) VALUES (?, ?)",
                (key, str(provider)),
            )


class LabelSummary(TypedDict):
    provider: str
    labelled: int  # items labelled by this run
    cached: int  # items that already had labels
    labels: int
    problems: list[str]


def label_catalog(
    catalog: Catalog,
    provider: Provider,
    *,
    refresh: bool = False,
    client: Any = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    concurrency: int | None = None,
) -> LabelSummary:
    """Label what is not labelled yet (or everything with refresh); returns a summary.

    Cloud Vision labels are saved batch by batch as each request returns, so an error or Ctrl-C
    keeps every label already paid for and the next run continues with the rest."""
    if concurrency is not None and concurrency < 1:
        raise OptionError("concurrency", concurrency, "use at least 1 request in flight.")
    todo, cached = pending(catalog, provider, refresh)
    results: dict[int, list[tuple[str, float]]] = {}
    problems: list[str] = []
    if provider == Provider.instagram:
        results = {
            i: [(w, 1.0) for w in parse_alt_text(row.alt_text)] for i, (_, row) in enumerate(todo)
        }
    elif provider == Provider.hashtags:
        results = {
            i: [(t, 1.0) for t in json.loads(row.tags if isinstance(row.tags, str) else "[]")]
            for i, (_, row) in enumerate(todo)
        }
    elif todo and provider == Provider.local:
        results, problems = local_labels(
            [r.image for _, r in todo], [k for k, _ in todo], cache_dir, progress
        )
    elif todo and provider == Provider.google:

        def save(batch: dict[int, list[tuple[str, float]]]) -> None:
            store_labels(catalog, provider, {todo[i][0]: labels for i, labels in batch.items()})

        results, problems = label_images(
            [r.image for _, r in todo],
            client=client,
            progress=progress,
            on_batch=save,
            concurrency=concurrency or DEFAULT_CONCURRENCY,
        )
    if provider != Provider.google:
        store_labels(catalog, provider, {todo[i][0]: labels for i, labels in results.items()})
    return LabelSummary(
        provider=str(provider),
        labelled=len(results),
        cached=cached,
        labels=sum(len(v) for v in results.values()),
        problems=problems,
    )


def post_labels(catalog: Catalog, provider: Provider) -> Any:
    """A frame of (account, post_id, score, label) for scored posts labelled by this provider."""
    import pandas as pd

    posts = catalog.frame(Columns.LABEL_STATS, "WHERE score IS NOT NULL")
    if posts.empty:
        raise no_scores_error(catalog)
    # local labels count where rank shows them as seen: at SEEN_THRESHOLD, not at the 10% they
    # are stored at (below it, ImageNet's classes mostly name artefacts: "punching bag" for a
    # dark photo of a person)
    floor = SEEN_THRESHOLD if provider == Provider.local else 0.0
    labels = pd.read_sql_query(
        "SELECT item, label FROM labels WHERE provider=? AND confidence >= ?",
        catalog.db,
        params=(str(provider), floor),
    )
    posts["item"] = [
        item_key(provider, a, p, s)
        for a, p, s in zip(posts["account"], posts["post_id"], posts["image_sha256"], strict=True)
    ]
    posts = posts[posts["item"].isin(labelled_items(catalog, provider))]
    if posts.empty:
        raise CatalogError(
            f"no scored post has {provider} labels yet; run `imagion labels` with `provider` {provider}."
        )
    return posts, posts.merge(labels, on="item")
