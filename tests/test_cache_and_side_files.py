"""What imagion keeps beside the work: cache entries used only when whole and current, a cache
that cannot be written costs a warning (never the run), temporary files of killed runs cleaned
up, and special files where SQLite keeps its journal refused instead of hanging."""

from __future__ import annotations

import os
import sqlite3
import time

import numpy as np
import pytest

from imagion.catalog.store import SCHEMA_VERSION, Catalog
from imagion.errors import CatalogError
from imagion.models.cache_entries import read_entry, save_entry
from tests.helpers import write_image


@pytest.fixture
def warnings_logged():
    """The messages the cache logs (the CLI stops the `imagion` logger's propagation, so
    pytest's caplog would miss them)."""
    import logging

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("imagion.models.cache_entries")
    handler = Keep(logging.WARNING)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


def _entry(tmp_path, array):
    path = tmp_path / "e.npy"
    assert save_entry(path, array)
    return path


def test_a_whole_entry_is_read(tmp_path):
    path = _entry(tmp_path, np.arange(4, dtype=np.float32))
    assert read_entry(path, (4,)).tolist() == [0, 1, 2, 3]
    assert read_entry(path, (5,)) is None  # another shape: computed again


@pytest.mark.parametrize("damage", ["empty", "truncated", "nan", "garbage"])
def test_a_damaged_entry_is_computed_again(tmp_path, damage):
    path = _entry(tmp_path, np.ones(64, dtype=np.float32))
    if damage == "empty":
        path.write_bytes(b"")  # np.load raises EOFError: it used to abort the run as Ctrl-C
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "nan":
        save_entry(path, np.full(64, np.nan, dtype=np.float32))
    else:
        path.write_bytes(b"\x93NUMPY garbage")
    assert read_entry(path, (64,)) is None


def test_an_entry_older_than_its_image_is_computed_again(tmp_path):
    image = write_image(tmp_path / "a.jpg", 0.5)
    path = _entry(tmp_path, np.ones(3, dtype=np.float32))
    old = time.time() - 100
    os.utime(image, (old, old))
    assert read_entry(path, (3,), image) is not None
    write_image(image, 0.9)  # the photo was replaced after its features were cached
    assert read_entry(path, (3,), image) is None


def test_an_unwritable_cache_warns_once_and_the_work_goes_on(tmp_path, warnings_logged):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")  # fails for root too
    assert not save_entry(blocked / "x" / "a.npy", np.ones(2))
    assert not save_entry(blocked / "x" / "b.npy", np.ones(2))
    assert sum("cannot be written" in m for m in warnings_logged) == 1
    assert blocked.read_text().startswith("a file")


def test_a_full_cache_names_its_folder(tmp_path, monkeypatch, warnings_logged):
    import errno

    from imagion.models import cache_entries

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_entries.np, "save", full)
    assert not save_entry(tmp_path / "full" / "a.npy", np.ones(2))
    text = " ".join(warnings_logged)
    assert str(tmp_path / "full") in text and "No space left" in text
    assert not list((tmp_path / "full").glob(".*"))  # no temporary file left behind


def test_old_temporaries_of_killed_runs_are_removed(tmp_path):
    from imagion.files import remove_stale_temporaries

    stale = tmp_path / ".model-abc.onnx"
    fresh = tmp_path / ".model-def.onnx"
    mine = tmp_path / "model.onnx"
    for p in (stale, fresh, mine):
        p.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(mine, (old, old))
    assert remove_stale_temporaries(tmp_path, pattern=".model-*.onnx") == 1
    assert not stale.exists() and fresh.exists() and mine.exists()


@pytest.mark.parametrize("side", ["-journal", "-wal", "-shm"])
def test_a_fifo_where_sqlite_keeps_its_journal_is_refused_not_waited_on(tmp_path, side):
    db = tmp_path / "c.db"
    Catalog(db, create=True).close()
    for leftover in ("-wal", "-shm"):
        (tmp_path / f"c.db{leftover}").unlink(missing_ok=True)
    os.mkfifo(tmp_path / f"c.db{side}")
    with pytest.raises(CatalogError, match="not a regular file"):
        Catalog(db)


def test_a_refused_newer_catalog_gains_no_side_files(tmp_path):
    newer = tmp_path / "newer.db"
    Catalog(newer, create=True).close()
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    for leftover in ("-wal", "-shm"):
        (tmp_path / f"newer.db{leftover}").unlink(missing_ok=True)
    with pytest.raises(CatalogError, match="newer imagion"):
        Catalog(newer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newer.db"]


def test_emoji_codes_in_names_stay_text(tmp_path, runner):
    from imagion.cli import app

    write_image(tmp_path / ":smile: sunset.jpg", 0.5)
    write_image(tmp_path / "b.jpg", 0.3)
    res = runner.invoke(app, ["rank", str(tmp_path)], env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    assert ":smile:" in res.stdout and "😄" not in res.stdout
