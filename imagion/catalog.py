"""The catalog: one SQLite file holding posts, their scores and their labels."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from imagion.errors import ImagionError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CATALOG = "imagion.db"
ENV_CATALOG = "IMAGION_CATALOG"

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    post_id TEXT NOT NULL,
    source TEXT NOT NULL,
    source_format TEXT NOT NULL,
    likes INTEGER,
    likes_hidden INTEGER NOT NULL DEFAULT 0,
    comments INTEGER,
    posted_at INTEGER,
    followers INTEGER,
    owner_id TEXT,
    caption TEXT,
    alt_text TEXT,
    tags TEXT,
    image TEXT,
    image_sha256 TEXT,
    width INTEGER,
    height INTEGER,
    is_video INTEGER NOT NULL DEFAULT 0,
    is_carousel INTEGER NOT NULL DEFAULT 0,
    zscore REAL,
    score REAL,
    UNIQUE (account, post_id)
);
CREATE INDEX IF NOT EXISTS posts_sha ON posts (image_sha256);
-- labels are keyed by `item`: the image SHA-256 for image providers (google, local),
-- 'post:<account>/<post_id>' for post providers (instagram alt text, hashtags)
CREATE TABLE IF NOT EXISTS labels (
    item TEXT NOT NULL,
    provider TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence REAL,
    PRIMARY KEY (item, provider, label)
);
CREATE TABLE IF NOT EXISTS labelled (
    item TEXT NOT NULL,
    provider TEXT NOT NULL,
    PRIMARY KEY (item, provider)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass
class Post:
    """One Instagram post as read from disk; `image` is an absolute path or None."""

    account: str
    post_id: str
    source: str
    source_format: str
    likes: int | None = None
    likes_hidden: bool = False
    comments: int | None = None
    posted_at: int | None = None
    followers: int | None = None
    owner_id: str | None = None
    caption: str | None = None
    alt_text: str | None = None
    tags: str | None = None
    image: str | None = None
    image_sha256: str | None = None
    width: int | None = None
    height: int | None = None
    is_video: bool = False
    is_carousel: bool = False
    extra: dict = field(default_factory=dict, repr=False)


POST_COLUMNS = [f.name for f in fields(Post) if f.name != "extra"]


def resolve_catalog_path(path: str | os.PathLike | None) -> Path:
    """The catalog path: the argument, else $IMAGION_CATALOG, else ./imagion.db."""
    return Path(path or os.environ.get(ENV_CATALOG) or DEFAULT_CATALOG)


class Catalog:
    """A thin wrapper around the SQLite catalog file."""

    def __init__(self, path: str | os.PathLike, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise ImagionError(
                f"{self.path}: no catalog here. Create one with `imagion import SOURCE` "
                "or point --catalog / IMAGION_CATALOG at an existing one."
            )
        if self.path.parent and not self.path.parent.exists():
            raise ImagionError(f"{self.path}: folder {self.path.parent} does not exist.")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            cols = {r[1] for r in self.db.execute("PRAGMA table_info(labels)")}
            if cols and "item" not in cols:  # pre-0.1 label tables (never filled): recreate
                self.db.executescript("DROP TABLE labels; DROP TABLE IF EXISTS labelled;")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ImagionError(f"{self.path}: not an imagion catalog ({exc}).") from exc
        self.db.execute("PRAGMA journal_mode=WAL")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: the catalog is never left half-written."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def upsert_posts(self, posts: Iterable[Post]) -> tuple[int, int]:
        """Insert or update posts keyed by (account, post_id); returns (inserted, updated)."""
        cols = POST_COLUMNS
        placeholders = ",".join("?" for _ in cols)
        updates = ",".join(f"{c}=excluded.{c}" for c in cols if c not in ("account", "post_id"))
        updates += ", zscore=NULL, score=NULL"  # likes may have changed: re-run `imagion score`
        sql = (
            f"INSERT INTO posts ({','.join(cols)}) VALUES ({placeholders}) "
            f"ON CONFLICT(account, post_id) DO UPDATE SET {updates}"
        )
        rows = [tuple(getattr(p, c) for c in cols) for p in posts]
        with self.transaction() as db:
            before = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
            db.executemany(sql, rows)
            after = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        inserted = after - before
        return inserted, len(rows) - inserted

    def frame(self, columns: str = "*", where: str = "", params: tuple = ()) -> pd.DataFrame:
        """Posts as a DataFrame (ordered by account, then time)."""
        import pandas as pd

        sql = f"SELECT {columns} FROM posts {where} ORDER BY account, posted_at, post_id"
        return pd.read_sql_query(sql, self.db, params=params)

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def info(self) -> dict:
        """Summary counts of the catalog."""
        q = self.db.execute(
            """SELECT COUNT(DISTINCT account), COUNT(*), SUM(image IS NOT NULL),
                      SUM(score IS NOT NULL), SUM(is_carousel), SUM(is_video),
                      SUM(likes_hidden), MIN(posted_at), MAX(posted_at)
               FROM posts"""
        ).fetchone()
        keys = [
            "accounts",
            "posts",
            "posts_with_image",
            "scored",
            "carousels",
            "videos",
            "hidden_likes",
            "first_post",
            "last_post",
        ]
        out = dict(zip(keys, q, strict=True))
        for k in keys[:7]:
            out[k] = int(out[k] or 0)
        for k in ("first_post", "last_post"):
            if out[k] is not None:
                out[k] = datetime.fromtimestamp(out[k], UTC).isoformat()
        out["catalog"] = str(self.path.resolve())
        return out
