"""Test helpers: tiny generated images, instaloader folders, scored catalogs, the real datasets."""

from __future__ import annotations

import json
import lzma
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("IMAGION_DATASETS", ROOT.parent / "shared" / "datasets"))


def dataset(name: str) -> Path:
    """A real dataset folder, or skip the test with the reason."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {path} is absent (set IMAGION_DATASETS to its folder)")
    return path


def write_image(path: Path, brightness: float, size: int = 32, seed: int = 0) -> Path:
    """A small JPEG whose mean brightness is `brightness` (0..1), with a little noise."""
    rng = np.random.default_rng(seed)
    base = np.full((size, size, 3), brightness * 255.0)
    noise = rng.normal(0, 12, size=(size, size, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=92)
    return path


def instaloader_node(
    account: str, shortcode: str, likes: int, ts: int, caption: str = "", **extra: object
) -> dict:
    node = {
        "__typename": "GraphImage",
        "shortcode": shortcode,
        "taken_at_timestamp": ts,
        "is_video": False,
        "edge_media_preview_like": {"count": likes},
        "edge_media_to_comment": {"count": likes // 10},
        "edge_media_to_caption": {"edges": [{"node": {"text": caption}}] if caption else []},
        "accessibility_caption": f"May be an image of {account}",
        "owner": {"username": account, "id": str(abs(hash(account)) % 10**8)},
    }
    node.update(extra)
    return {"node": node, "instaloader": {"version": "4.9", "node_type": "Post"}}


def write_instaloader_post(
    folder: Path, stem: str, data: dict, image_brightness: float | None = 0.5, seed: int = 0
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with lzma.open(folder / f"{stem}.json.xz", "wt", encoding="utf-8") as f:
        json.dump(data, f)
    if image_brightness is not None:
        write_image(folder / f"{stem}.jpg", image_brightness, seed=seed)


def make_instaloader(
    root: Path, accounts: dict[str, list[int]], brightness_from_likes: bool = True
) -> Path:
    """One folder per account; post i gets likes[i]; image brightness grows with likes."""
    for a, likes_list in enumerate(accounts.items()):
        account, likes = likes_list
        lo, hi = min(likes), max(likes)
        for i, n in enumerate(likes):
            ts = 1_600_000_000 + a * 1000 + i * 3600
            stem = f"2020-09-13_{a:02d}-{i:02d}-00_UTC"
            b = 0.15 + 0.7 * ((n - lo) / (hi - lo) if hi > lo else 0.5)
            data = instaloader_node(
                account, f"{account}{i:03d}", n, ts, caption=f"post {i} #tag{i % 3}"
            )
            write_instaloader_post(
                root / account, stem, data, b if brightness_from_likes else 0.5, seed=a * 100 + i
            )
    return root


def scored_catalog(root: Path, accounts: int, posts: int, seed: int = 0) -> Path:
    """An imported and scored catalog of generated posts (brightness grows with likes)."""
    from imagion.catalog.importers import import_sources
    from imagion.catalog.scoring import score_catalog
    from imagion.catalog.store import Catalog

    rng = np.random.default_rng(seed)
    likes = {f"a{k}": [int(x) for x in rng.permutation(posts) * 10 + 5] for k in range(accounts)}
    make_instaloader(root / "ig", likes)
    with Catalog(root / "c.db", create=True) as cat:
        import_sources(cat, [root / "ig"])
        score_catalog(cat)
    return root / "c.db"


def posts_frame(db: Path):
    """The catalog's posts (the catalog is closed again)."""
    from imagion.catalog.store import Catalog

    with Catalog(db) as cat:
        return cat.frame()


def import_into(db: Path, sources: list[Path]):
    """Import into a (new) catalog and close it; returns the report."""
    from imagion.catalog.importers import import_sources
    from imagion.catalog.store import Catalog

    with Catalog(db, create=True) as cat:
        return import_sources(cat, sources)
