"""A failed import (a full disk, any crash) removes the catalog it created, and never touches
one that was there."""

from __future__ import annotations

import errno

import pytest

import imagion.workflows.verbs as verbs
from imagion.cli import app
from tests.helpers import import_into, make_instaloader


def _crash(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_a_failed_import_removes_the_catalog_it_created(runner, tmp_path, monkeypatch):
    make_instaloader(tmp_path / "ig", {"a": [5, 10]})
    monkeypatch.setattr(verbs, "import_sources", _crash)
    db = tmp_path / "new.db"
    res = runner.invoke(app, ["import", str(tmp_path / "ig"), "--catalog", str(db)])
    assert res.exit_code == 1 and "No space left" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ig"]  # no catalog, no -wal, no -shm
    monkeypatch.setattr(verbs, "import_sources", _interrupt)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in Python: the same
        verbs.import_posts([tmp_path / "ig"], db)
    assert not db.exists()


def test_a_failed_import_into_an_existing_catalog_keeps_it(runner, tmp_path, monkeypatch):
    make_instaloader(tmp_path / "ig", {"a": [5, 10]})
    db = tmp_path / "cat.db"
    import_into(db, [tmp_path / "ig"])
    before = db.read_bytes()
    monkeypatch.setattr(verbs, "import_sources", _crash)
    res = runner.invoke(app, ["import", str(tmp_path / "ig"), "--catalog", str(db)])
    assert res.exit_code == 1
    assert db.read_bytes() == before
