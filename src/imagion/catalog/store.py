"""The catalog: one SQLite file holding posts, their scores and their labels.

An imagion catalog identifies itself: `PRAGMA application_id` is APPLICATION_ID and
`PRAGMA user_version` the schema version. A file is probed before anything is written: a file
that is not SQLite, a SQLite file of another application, or a catalog of a newer imagion is
refused without a single write. Catalogs of older versions are brought up to date by numbered
migrations (MIGRATIONS), in one transaction. A catalog that cannot be written (read-only file or
folder) is opened read-only: everything that only reads still works.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from imagion._types import PathLike
from imagion.errors import CatalogError, ImagionError, OptionError
from imagion.files import regular_file

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CATALOG = "imagion.db"
ENV_CATALOG = "IMAGION_CATALOG"
PHOTO_INDEX_ID = 0x696D6978  # imagion's photo index (inference/photo_index.py): not a catalog
APPLICATION_ID = 0x696D6167  # "imag"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 10.0
# the columns that make a pre-versioning (0.1) catalog recognisable as imagion's
LEGACY_POST_COLUMNS = {"account", "post_id", "source", "source_format", "likes_hidden"}

SCHEMA_V1 = """
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


def _migrate_1(db: sqlite3.Connection) -> None:
    """Version 1: the 0.1 schema. A 0.1 catalog already has it, except that its label tables may
    predate the `item` key; those were never filled and are recreated (refused if they hold rows)."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(labels)")}
    if cols and "item" not in cols:
        if db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]:
            raise CatalogError(
                "the catalog's labels table has an unknown layout and holds rows; "
                "imagion leaves it alone (copy the catalog and remove the table)."
            )
        db.execute("DROP TABLE labels")
        db.execute("DROP TABLE IF EXISTS labelled")
    for statement in SCHEMA_V1.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_2(db: sqlite3.Connection) -> None:
    """Version 2: an index for the catalog's usual order (account, then time)."""
    db.execute("CREATE INDEX IF NOT EXISTS posts_account_time ON posts (account, posted_at)")


# What Instagram's own exports add beside likes and comments (insights, the content CSV); an
# export's "Views" (Meta's name since 2025) and "Impressions" (before) share one column.
METRIC_COLUMNS = ("reach", "impressions", "saves", "shares", "follows", "profile_visits")


def _migrate_3(db: sqlite3.Connection) -> None:
    """Version 3: the per-post statistics of Instagram's own exports."""
    have = {r[1] for r in db.execute("PRAGMA table_info(posts)")}
    for column in METRIC_COLUMNS:
        if column not in have:
            db.execute(f"ALTER TABLE posts ADD COLUMN {column} INTEGER")


# MIGRATIONS[k] brings a catalog from version k to k + 1; version 0 is "no schema yet" (a new
# file, or a 0.1 catalog that predates versioning).
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1, _migrate_2, _migrate_3]
SCHEMA_VERSION = len(MIGRATIONS)


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
    reach: int | None = None
    impressions: int | None = None
    saves: int | None = None
    shares: int | None = None
    follows: int | None = None
    profile_visits: int | None = None
    extra: dict = field(default_factory=dict, repr=False)


POST_COLUMNS = [f.name for f in fields(Post) if f.name != "extra"]
ALL_COLUMNS = frozenset(["id", *POST_COLUMNS, "zscore", "score"])


class Columns:
    """The column sets the rest of imagion reads: one home, so a renamed column changes here."""

    SCORING = ("id", "account", "likes", "likes_hidden", "posted_at", "comments", *METRIC_COLUMNS)
    _POST = (
        "account",
        "post_id",
        "likes",
        "zscore",
        "score",
        "image",
        "image_sha256",
        "posted_at",
        "caption",
    )
    TRAINING = ("id", *_POST)
    EVALUATION = (*_POST, "likes_hidden")
    LABELLING = ("account", "post_id", "image", "image_sha256", "alt_text", "tags")
    LABEL_STATS = ("account", "post_id", "image_sha256", "score")
    LISTING = (
        "account",
        "post_id",
        "likes",
        "posted_at",
        "image",
        "score",
        "zscore",
        "comments",
        "is_video",
        "is_carousel",
    )
    # `posts --json/--csv`: everything the catalog stores about a post, the listing's first
    EVERYTHING = LISTING + tuple(sorted(set(POST_COLUMNS) - set(LISTING), key=POST_COLUMNS.index))


def resolve_catalog_path(path: str | os.PathLike | None) -> Path:
    """The catalog path: the argument, else $IMAGION_CATALOG, else ./imagion.db."""
    return Path(path or os.environ.get(ENV_CATALOG) or DEFAULT_CATALOG)


LOCKED = "is locked by another process (is another imagion command running?); try again when it has finished."
READ_ONLY = "is read-only; imagion can read it but not change it (copy it somewhere writable or fix its permissions)."
FULL = "cannot be written: the disk is full; nothing was changed. Free some space and run the command again."
SQLITE_SAYS: dict[
    int | None, str
] = {  # SQLite's primary result code → what it means for the catalog
    sqlite3.SQLITE_BUSY: LOCKED,
    sqlite3.SQLITE_LOCKED: LOCKED,
    sqlite3.SQLITE_READONLY: READ_ONLY,
    sqlite3.SQLITE_FULL: FULL,
    sqlite3.SQLITE_IOERR: "cannot be written: disk I/O error ({message}); nothing was changed.",
    sqlite3.SQLITE_NOTADB: "is not a SQLite database ({message}); imagion leaves it untouched.",
    sqlite3.SQLITE_CORRUPT: "is damaged ({message}); restore it from a copy or import again.",
}


def sqlite_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error (extended codes folded: SQLITE_IOERR_WRITE is
    SQLITE_IOERR), None for an error SQLite did not raise."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def sqlite_error(path: Path | None, exc: sqlite3.Error) -> CatalogError:
    """One clear line for what SQLite reports, by its error code (`sqlite_errorcode`; never by
    the wording), naming the catalog and what to do. The one translation of SQLite's errors:
    the catalog's methods and the command line's error boundary both call it."""
    text = SQLITE_SAYS.get(sqlite_code(exc))
    message = str(exc)
    text = (text or "database error ({message}).").format(message=message)
    return CatalogError(f"{path}: catalog {text}" if path else f"catalog {text}")


def read_only_error(path: Path) -> CatalogError:
    return CatalogError(f"{path}: catalog {READ_ONLY}")


def _ro_uri(path: Path, immutable: bool = False) -> str:
    return path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (a WAL catalog in a read-only folder is opened immutable)."""
    try:
        db = sqlite3.connect(_ro_uri(path), uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        if sqlite_code(exc) != sqlite3.SQLITE_CANTOPEN:
            raise
    return sqlite3.connect(_ro_uri(path, immutable=True), uri=True, isolation_level=None)


def probe_catalog(path: Path) -> int | None:
    """The schema version of the catalog at `path` (0: a 0.1 catalog from before versioning), or
    None when there is none yet (no file, an empty file or an empty SQLite database).

    Reads only; a file that is not an imagion catalog, or one of a newer imagion, is refused."""
    if not path.exists() and not path.is_symlink():
        return None
    regular_file(path, "catalog")
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror}).") from exc
    if not header:
        return None
    if not header.startswith(SQLITE_MAGIC) or len(header) < 100:
        raise CatalogError(
            f"{path}: not an imagion catalog (not a SQLite file); imagion leaves it untouched."
        )
    app_id = int.from_bytes(header[68:72], "big")
    if app_id == APPLICATION_ID and int.from_bytes(header[60:64], "big") > SCHEMA_VERSION:
        # refused from the header alone: opening a newer WAL catalog would leave -wal/-shm
        raise CatalogError(
            f"{path}: catalog schema version {int.from_bytes(header[60:64], 'big')} comes from "
            f"a newer imagion (this one knows up to {SCHEMA_VERSION}); upgrade imagion to use it."
        )
    if app_id == PHOTO_INDEX_ID:
        raise CatalogError(
            f"{path}: imagion's photo index (what `rank` remembers of your photos), not a catalog "
            "of posts; give the catalog `imagion import` made. imagion leaves it untouched."
        )
    if app_id not in (0, APPLICATION_ID):
        raise CatalogError(
            f"{path}: a SQLite database of another application (application_id {app_id:#x}), "
            "not an imagion catalog; imagion leaves it untouched."
        )
    try:
        db = connect_readonly(path)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            post_cols = {r[1] for r in db.execute("PRAGMA table_info(posts)")}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise CatalogError(
            f"{path}: not a readable imagion catalog ({exc}); imagion leaves it untouched."
        ) from exc
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{path}: catalog schema version {version} comes from a newer imagion "
                f"(this one knows up to {SCHEMA_VERSION}); upgrade imagion to use it."
            )
        return version
    if not tables and version == 0:
        return None  # an empty SQLite database: nothing to lose
    if version == 0 and post_cols >= LEGACY_POST_COLUMNS:
        return 0  # an imagion 0.1 catalog, from before the catalog said whose it was
    shown = ", ".join(sorted(tables)[:5]) + ("…" if len(tables) > 5 else "")
    raise CatalogError(
        f"{path}: a SQLite database of another application (tables: {shown or 'none'}), "
        "not an imagion catalog; imagion leaves it untouched."
    )


SIDE_FILES = ("-journal", "-wal", "-shm")  # what SQLite opens beside a database


def no_special_side_files(path: Path) -> None:
    """Refuse a FIFO, socket, device or folder where SQLite will open `<catalog>-journal`,
    `-wal` or `-shm`: opening a FIFO blocks forever (a regular file there is SQLite's own)."""
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        try:
            mode = side.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            try:
                mode = side.stat().st_mode
            except OSError:
                continue  # a dangling link: SQLite creates or fails, it does not hang
        if not stat.S_ISREG(mode):
            raise CatalogError(
                f"{side}: not a regular file (a FIFO, socket, device or folder) where SQLite "
                "keeps the catalog's journal; move it away and run the command again."
            )


def _writable(path: Path) -> bool:
    folder = path.parent if str(path.parent) else Path(".")
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


class Catalog:
    """A thin wrapper around the SQLite catalog file (see the module's docstring)."""

    def __init__(self, path: PathLike, *, create: bool = False) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise CatalogError(f"{self.path}: folder {self.path.parent} does not exist.")
        no_special_side_files(self.path)
        version = probe_catalog(self.path)
        if version is None and not create:
            raise CatalogError(
                f"{self.path}: no catalog here. Create one with `imagion import SOURCE` "
                "or point `catalog` / IMAGION_CATALOG at an existing one."
            )
        self.readonly = not _writable(self.path)
        if self.readonly and (version is None or version < SCHEMA_VERSION):
            what = "created" if version is None else "upgraded to this imagion's schema"
            raise CatalogError(
                f"{self.path}: catalog is read-only and needs to be {what}; "
                "copy it somewhere writable or fix its permissions."
            )
        try:
            if self.readonly:
                self.db = connect_readonly(self.path)
                return
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
            if version is None or version < SCHEMA_VERSION:
                self._migrate()
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc) from exc

    def _migrate(self) -> None:
        """Bring the catalog to SCHEMA_VERSION, all migrations in one transaction."""
        with self.transaction() as db:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or version > SCHEMA_VERSION:
                raise CatalogError(
                    f"{self.path}: changed by another program while opening; try again."
                )
            for migrate in MIGRATIONS[version:]:
                migrate(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: the catalog is never left half-written; SQLite errors become one line."""
        if self.readonly:
            raise read_only_error(self.path)
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc) from exc
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:  # SQLite may already have rolled back (disk full)
                with suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise sqlite_error(self.path, exc) from exc
            raise

    def upsert_posts(
        self, posts: Iterable[Post], superseded: Iterable[tuple[str, str]] = ()
    ) -> tuple[int, int, int]:
        """Insert or update posts keyed by (account, post_id); returns (inserted, updated,
        merged).

        `superseded`: (account, post_id) keys of posts these ones replace (a content-CSV row
        imported alone, keyed by its shortcode, now joined to its export image): such a row is
        removed in the same transaction; `merged` counts them."""
        with self.transaction() as db:
            return self.upsert_in(db, posts, superseded)

    def upsert_in(
        self,
        db: sqlite3.Connection,
        posts: Iterable[Post],
        superseded: Iterable[tuple[str, str]] = (),
    ) -> tuple[int, int, int]:
        """upsert_posts inside a transaction the caller holds (an import writes its posts in
        batches, all or nothing)."""
        cols = POST_COLUMNS
        placeholders = ",".join("?" for _ in cols)
        updates = ",".join(f"{c}=excluded.{c}" for c in cols if c not in ("account", "post_id"))
        updates += ", zscore=NULL, score=NULL"  # likes may have changed: re-run `imagion score`
        sql = (
            f"INSERT INTO posts ({','.join(cols)}) VALUES ({placeholders}) "
            f"ON CONFLICT(account, post_id) DO UPDATE SET {updates}"
        )
        rows = [tuple(getattr(p, c) for c in cols) for p in posts]
        gone = db.executemany(
            "DELETE FROM posts WHERE account=? AND post_id=? AND image IS NULL "
            "AND source_format='content-csv'",
            list(superseded),
        ).rowcount
        before = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        db.executemany(sql, rows)
        after = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        inserted = after - before
        return inserted, len(rows) - inserted, max(gone, 0)

    def frame(
        self, columns: Sequence[str] | str = "*", where: str = "", params: tuple = ()
    ) -> pd.DataFrame:
        """Posts as a DataFrame (ordered by account, then time); `columns` a Columns set."""
        import pandas as pd

        if not isinstance(columns, str):
            unknown = set(columns) - ALL_COLUMNS
            if unknown:
                raise OptionError("columns", ", ".join(sorted(unknown)), "no such catalog column.")
            columns = ", ".join(columns)
        sql = f"SELECT {columns} FROM posts {where} ORDER BY account, posted_at, post_id"
        try:
            return pd.read_sql_query(sql, self.db, params=params)
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc) from exc

    def has_scores(self) -> bool:
        """Whether any post has a score (`imagion score` ran and could score some)."""
        row = self.db.execute("SELECT 1 FROM posts WHERE score IS NOT NULL LIMIT 1").fetchone()
        return row is not None

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def info(self) -> CatalogInfo:
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
        got = dict(zip(keys, q, strict=True))
        counts = {k: int(got[k] or 0) for k in keys[:7]}
        return CatalogInfo(
            accounts=counts["accounts"],
            posts=counts["posts"],
            posts_with_image=counts["posts_with_image"],
            scored=counts["scored"],
            carousels=counts["carousels"],
            videos=counts["videos"],
            hidden_likes=counts["hidden_likes"],
            first_post=iso_time(got["first_post"]),
            last_post=iso_time(got["last_post"]),
            catalog=str(self.path.resolve()),
            schema_version=self.schema_version,
        )


class CatalogInfo(TypedDict):
    """`imagion.info()`: the catalog's counts, its first and last post (ISO dates), its file."""

    accounts: int
    posts: int
    posts_with_image: int
    scored: int
    carousels: int
    videos: int
    hidden_likes: int
    first_post: str | None
    last_post: str | None
    catalog: str
    schema_version: int


def iso_time(ts: object) -> str | None:
    """An ISO date for a stored Unix time; None for missing or impossible values (never raises)."""
    try:
        return datetime.fromtimestamp(int(ts), UTC).isoformat() if ts is not None else None  # type: ignore[call-overload]
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def no_scores_error(catalog: Catalog) -> ImagionError:
    """Why no post has a score: `imagion score` never ran, or it ran and could score none (every
    account with fewer than --min-posts usable posts, or all its likes equal)."""
    if catalog.get_meta("score_settings") is None:
        return CatalogError(f"{catalog.path}: no post has a score yet; run `imagion score` first.")
    return CatalogError(
        f"{catalog.path}: `imagion score` ran but could score no post: every account has too few "
        "posts with likes (`min_posts`) or the same likes on all of them; import more posts."
    )
