"""A large CSV manifest is imported in batches (issue #35: 300,000 rows were all held until the
end, 570 MB, and the same image was hashed once per row): at most BATCH posts are held, each
image is checked and hashed once, and the import stays all or nothing.
bench/import_memory.py measures the real figures (docs/benchmarks.md)."""

from __future__ import annotations

import sqlite3

import pytest

import imagion.catalog.formats as formats
import imagion.catalog.importers as importers
from imagion.catalog.store import Catalog
from imagion.cli import app
from tests.helpers import write_image


def _manifest(tmp_path, rows: int):
    for name, b in (("a.jpg", 0.3), ("b.jpg", 0.7)):
        write_image(tmp_path / name, b)
    lines = ["account,image,likes,posted_at,post_id"]
    lines += [
        f"acc{k % 3},{'ab'[k % 2]}.jpg,{k},2024-01-{k % 28 + 1:02d},p{k}" for k in range(rows)
    ]
    path = tmp_path / "posts.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rows_are_written_in_batches_and_each_image_hashed_once(tmp_path, monkeypatch, runner):
    manifest = _manifest(tmp_path, 95)
    monkeypatch.setattr(importers, "BATCH", 10)
    batches: list[int] = []
    real_upsert = Catalog.upsert_in

    def upsert_in(self, db, posts, superseded=()):
        batches.append(len(posts))
        return real_upsert(self, db, posts, superseded)

    hashed: list[str] = []
    real_hash = formats.sha256_file

    def sha256_file(path):
        hashed.append(str(path))
        return real_hash(path)

    monkeypatch.setattr(Catalog, "upsert_in", upsert_in)
    monkeypatch.setattr(formats, "sha256_file", sha256_file)
    db = tmp_path / "c.db"
    res = runner.invoke(app, ["import", str(manifest), "--catalog", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert max(batches) <= 10 and sum(batches) == 95
    assert sorted(hashed) == sorted({str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")})
    with sqlite3.connect(db) as con:
        n, images = con.execute(
            "SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM posts"
        ).fetchone()
    assert (n, images) == (95, 2)


def test_csv_rows_are_read_as_they_are_consumed(tmp_path):
    manifest = _manifest(tmp_path, 5)
    problems: list[str] = []
    header, rows = formats.csv_table(manifest, problems)
    assert header[:2] == ["account", "image"] and not isinstance(rows, list)
    assert next(iter(rows))[0] == 2


def test_an_import_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    from imagion.workflows.verbs import import_posts

    manifest = _manifest(tmp_path, 35)
    db = tmp_path / "c.db"
    with Catalog(db, create=True):
        pass
    monkeypatch.setattr(importers, "BATCH", 10)
    real_upsert = Catalog.upsert_in
    calls = [0]

    def failing(self, conn, posts, superseded=()):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("disk on fire")
        return real_upsert(self, conn, posts, superseded)

    monkeypatch.setattr(Catalog, "upsert_in", failing)
    with pytest.raises(RuntimeError):
        import_posts([manifest], db)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 0
