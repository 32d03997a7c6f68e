"""Errors as data: SQLite's errors translated once, by their error code (never by their
wording), into a CatalogError; `Catalog.frame` refuses an unknown column as an OptionError; few
bare ImagionErrors; ServeError is one of them."""

from __future__ import annotations

import sqlite3

import pytest

from imagion.catalog.store import Catalog, sqlite_error
from imagion.errors import CatalogError, OptionError
from tests.helpers import scored_catalog


def _error(code: int, text: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # as SQLite sets it
    return exc


def test_the_code_decides_not_the_wording(tmp_path):
    db = tmp_path / "c.db"
    full = sqlite_error(db, _error(sqlite3.SQLITE_FULL, "database is locked"))
    locked = sqlite_error(db, _error(sqlite3.SQLITE_BUSY, "something else"))
    io_write = sqlite_error(db, _error(sqlite3.SQLITE_IOERR | (3 << 8), "disk I/O error"))
    assert isinstance(full, CatalogError) and "disk is full" in str(full)
    assert "locked by another process" in str(locked)
    assert "disk I/O error" in str(io_write) and str(io_write).startswith(str(db))
    assert "database error (x)" in str(sqlite_error(db, sqlite3.DatabaseError("x")))


def test_a_real_read_only_catalog_is_one_catalog_error(tmp_path):
    db = scored_catalog(tmp_path, 2, 3)
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as caught:
        raw.execute("DELETE FROM posts")
    raw.close()
    assert "read-only" in str(sqlite_error(db, caught.value))


def test_an_unknown_column_is_an_option_error(tmp_path):
    db = scored_catalog(tmp_path, 2, 3)
    with Catalog(db) as cat, pytest.raises(OptionError) as err:
        cat.frame(["account", "nonsense"])
    assert err.value.option == "columns" and err.value.value == "nonsense"


def test_the_cli_boundary_uses_the_same_translation(runner, tmp_path, monkeypatch):
    from imagion.cli import app, catalog_commands

    def boom(*args, **kwargs):
        raise _error(sqlite3.SQLITE_BUSY, "no words to match")

    monkeypatch.setattr(catalog_commands, "catalog_info", boom)
    db = scored_catalog(tmp_path, 2, 3)
    res = runner.invoke(app, ["info", "--catalog", str(db)])
    assert res.exit_code == 1 and "locked by another process" in res.stderr


def test_at_most_20_bare_imagion_errors_and_serve_errors_are_imagion_errors():
    """Errors are data: a raise says which kind of thing is wrong (catalog, checkpoint, input,
    option, model, missing layer, outside service); a bare ImagionError is the exception."""
    import re

    from imagion.errors import ImagionError
    from imagion.serve.app import ServeError
    from tests.helpers import ROOT

    bare = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "imagion").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"raise ImagionError\(", line)
    ]
    assert len(bare) <= 20, bare
    assert issubclass(ServeError, ImagionError)
