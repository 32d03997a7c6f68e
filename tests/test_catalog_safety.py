"""The catalog never touches foreign data; versions migrate; locked, read-only, full: one line."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from imagion.catalog import store as catalog_mod
from imagion.catalog.importers import import_sources
from imagion.catalog.store import APPLICATION_ID, SCHEMA_V1, SCHEMA_VERSION, Catalog, Post
from imagion.cli import app
from imagion.errors import ImagionError, OptionError
from tests.helpers import scored_catalog


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _foreign(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO labels (name) VALUES ('invoice'), ('receipt');"
        "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');"
    )
    db.commit()
    db.close()
    return path


COMMANDS = [
    ["info"],
    ["posts"],
    ["score"],
    ["labels", "-p", "hashtags"],
    ["train", "--epochs", "1"],
    ["eval"],
    ["import", "SRC"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_foreign_sqlite_file_is_untouched_by_every_command(args, tmp_path, runner, small_ig):
    folder = tmp_path / "app"
    folder.mkdir()
    path = _foreign(folder / "other-app.db")
    before = _digest(folder)
    args = [str(small_ig) if a == "SRC" else a for a in args]
    res = runner.invoke(app, [*args, "--catalog", str(path)])
    assert res.exit_code == 1, res.output
    assert "another application (tables: labels, notes)" in res.stderr
    assert "Traceback" not in res.output
    assert _digest(folder) == before  # same files (no -wal, -shm, -journal), same bytes
    rows = sqlite3.connect(path).execute("SELECT name FROM labels ORDER BY id").fetchall()
    assert rows == [("invoice",), ("receipt",)]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"name,likes\nx,1\n", "not a SQLite file"),
        (b"SQLite format 3\x00" + b"\x00" * 10, "not a SQLite file"),
    ],
)
def test_non_sqlite_files_are_refused_untouched(content, reason, tmp_path, runner):
    path = tmp_path / "posts.db"
    path.write_bytes(content)
    res = runner.invoke(app, ["info", "--catalog", str(path)])
    assert res.exit_code == 1 and reason in res.stderr
    assert path.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == [
        "posts.db"
    ]


def test_other_application_id_and_newer_version_are_refused(tmp_path):
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("PRAGMA application_id = 42")
    db.execute("CREATE TABLE posts (account, post_id, source, source_format, likes_hidden)")
    db.commit()
    db.close()
    with pytest.raises(ImagionError, match="application_id 0x2a"):
        Catalog(other)
    newer = tmp_path / "newer.db"
    Catalog(newer, create=True).close()
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    data = newer.read_bytes()
    with pytest.raises(ImagionError, match="newer imagion"):
        Catalog(newer, create=True)
    assert newer.read_bytes() == data


def test_new_catalog_carries_identity_and_version(tmp_path):
    with Catalog(tmp_path / "c.db", create=True) as cat:
        assert cat.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert cat.schema_version == SCHEMA_VERSION
        assert cat.info()["schema_version"] == SCHEMA_VERSION
    # an empty file (touch) and an empty SQLite database are adopted by import
    (tmp_path / "empty.db").touch()
    Catalog(tmp_path / "empty.db", create=True).close()
    sqlite3.connect(tmp_path / "bare.db").execute("PRAGMA page_size=4096").close()
    Catalog(tmp_path / "bare.db", create=True).close()
    with pytest.raises(ImagionError, match="no catalog here"):
        Catalog(tmp_path / "missing.db")


def _legacy_catalog(path: Path, labels_schema: str | None = None) -> None:
    """A catalog as imagion 0.1 wrote it: no application_id, no user_version."""
    db = sqlite3.connect(path)
    schema = SCHEMA_V1
    if labels_schema is not None:
        schema = schema.replace(
            "CREATE TABLE IF NOT EXISTS labels (", "CREATE TABLE IF NOT EXISTS labels_new ("
        )
    db.executescript(schema + (labels_schema or ""))
    db.execute(
        "INSERT INTO posts (account, post_id, source, source_format, likes) VALUES ('a','p','s','csv',5)"
    )
    db.commit()
    db.close()


def test_migrations_from_every_earlier_version(tmp_path):
    # version 0: an imagion 0.1 catalog
    v0 = tmp_path / "v0.db"
    _legacy_catalog(v0)
    sqlite3.connect(v0).executescript(
        "INSERT INTO labels VALUES ('sha', 'google', 'cat', 0.9);"
        "INSERT INTO labelled VALUES ('sha', 'google');"
    ).close()
    # version 1: the first versioned schema
    v1 = tmp_path / "v1.db"
    _legacy_catalog(v1)
    sqlite3.connect(v1).executescript(
        f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
    ).close()
    for path in (v0, v1):
        with Catalog(path) as cat:
            assert cat.schema_version == SCHEMA_VERSION
            assert cat.frame()["likes"].tolist() == [5]
            indexes = {r[1] for r in cat.db.execute("PRAGMA index_list(posts)")}
            assert "posts_account_time" in indexes
    with Catalog(v0) as cat:  # paid labels survive the migration
        assert cat.db.execute("SELECT label FROM labels").fetchall() == [("cat",)]


def test_legacy_label_table_empty_is_recreated_full_is_refused(tmp_path):
    old_labels = "CREATE TABLE labels (sha TEXT, label TEXT);"
    empty = tmp_path / "empty-labels.db"
    _legacy_catalog(empty, old_labels)
    with Catalog(empty) as cat:
        assert "item" in {r[1] for r in cat.db.execute("PRAGMA table_info(labels)")}
    full = tmp_path / "full-labels.db"
    _legacy_catalog(full, old_labels + "INSERT INTO labels VALUES ('x', 'dog');")
    data = full.read_bytes()
    with pytest.raises(ImagionError, match="labels table has an unknown layout"):
        Catalog(full)
    assert sqlite3.connect(full).execute("SELECT * FROM labels").fetchall() == [("x", "dog")]
    assert sqlite3.connect(full).execute("PRAGMA user_version").fetchone()[0] == 0
    assert full.read_bytes() == data


def test_read_only_catalog_can_be_read_not_written(tmp_path, runner, monkeypatch):
    db = scored_catalog(tmp_path, 2, 4)
    monkeypatch.setattr(catalog_mod, "_writable", lambda path: False)
    res = runner.invoke(app, ["info", "--catalog", str(db), "--json"])
    assert res.exit_code == 0 and '"posts": 8' in res.stdout
    res = runner.invoke(app, ["posts", "--catalog", str(db), "--json"])
    assert res.exit_code == 0
    res = runner.invoke(app, ["score", "--catalog", str(db)])
    assert res.exit_code == 1 and "is read-only" in res.stderr and "Traceback" not in res.output


def test_locked_catalog_is_one_line(tmp_path, runner, monkeypatch, small_ig):
    db = tmp_path / "c.db"
    Catalog(db, create=True).close()
    monkeypatch.setattr(catalog_mod, "BUSY_TIMEOUT_S", 0.05)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        res = runner.invoke(app, ["import", str(small_ig), "--catalog", str(db)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert res.exit_code == 1 and "is locked by another process" in res.stderr
    assert "Traceback" not in res.output


def test_full_disk_reports_the_real_error_and_changes_nothing(tmp_path):
    with Catalog(tmp_path / "c.db", create=True) as cat:
        pages = cat.db.execute("PRAGMA page_count").fetchone()[0]
        cat.db.execute(f"PRAGMA max_page_count = {pages + 1}")
        posts = [
            Post(account="a", post_id=str(i), source="x" * 500, source_format="csv", likes=i)
            for i in range(2000)
        ]
        with pytest.raises(ImagionError, match="the disk is full; nothing was changed"):
            cat.upsert_posts(posts)
        assert cat.frame().empty


def test_stored_impossible_dates_do_not_break_info(tmp_path, runner, small_ig):
    db = tmp_path / "c.db"
    with Catalog(db, create=True) as cat:
        import_sources(cat, [small_ig])
        with cat.transaction() as conn:  # as an older imagion could store them
            conn.execute("UPDATE posts SET posted_at = 1600000000000 WHERE rowid = 1")
    for command in ("info", "posts"):
        res = runner.invoke(app, [command, "--catalog", str(db), "--json"])
        assert res.exit_code == 0, res.output


def test_column_sets_are_real_columns(tmp_path):
    from imagion.catalog.store import Columns

    with Catalog(tmp_path / "c.db", create=True) as cat:
        for name in ("SCORING", "TRAINING", "EVALUATION", "LABELLING", "LABEL_STATS", "LISTING"):
            assert list(cat.frame(getattr(Columns, name)).columns) == list(getattr(Columns, name))
        with pytest.raises(OptionError, match="`columns` nope: no such catalog column"):
            cat.frame(("account", "nope"))
