"""The photo index (imagion.inference.photo_index): an unchanged photo is never decoded again, a
changed one always is, another model's rows are never read, and a killed run, a corrupt index or
a failing store lose nothing."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from imagion.cli import app
from imagion.inference import photo_index
from imagion.inference.engine import open_engine
from imagion.inference.groups import group_images
from imagion.inference.photo_index import PhotoIndex, model_identity, scored_pass
from tests.bursts import write_bursts
from tests.helpers import ROOT, write_image


@pytest.fixture(scope="module")
def engine():
    return open_engine(None, "cpu")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for k in range(12):
        write_image(tmp_path / "shoot" / f"p{k:02d}.jpg", 0.1 + 0.07 * k, seed=k)
    return tmp_path / "shoot"


@pytest.fixture
def decoded(monkeypatch) -> list[Path]:
    """Every file the pass decodes."""
    seen: list[Path] = []
    real = photo_index.run_files

    def counting(files, *args, **kwargs):
        seen.extend(files)
        return real(files, *args, **kwargs)

    monkeypatch.setattr(photo_index, "run_files", counting)
    return seen


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def run(engine, folder: Path, index: PhotoIndex | None):
    got = scored_pass(engine, files(folder), None, None, index)
    if index is not None:
        index.close()
    return got


def test_an_unchanged_photo_is_read_and_a_modified_one_rescored(engine, folder, tmp_path, decoded):
    first = run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    assert len(decoded) == 12 and first.from_index == 0
    decoded.clear()
    again = run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    assert decoded == [] and again.from_index == 12
    np.testing.assert_array_equal(again.raw, first.raw)
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.hashes, first.hashes)
    changed = folder / "p03.jpg"
    write_image(changed, 0.95, seed=99)  # another photo under the same name
    os.utime(changed, ns=(1, changed.stat().st_mtime_ns + 10**9))
    third = run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    assert decoded == [changed] and third.from_index == 11
    assert third.raw[3] != first.raw[3] and np.array_equal(third.raw[:3], first.raw[:3])


def test_another_model_never_reads_these_rows(engine, folder, tmp_path, decoded, monkeypatch):
    run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    decoded.clear()
    monkeypatch.setattr(photo_index, "model_identity", lambda e: "another model")
    other = run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    assert len(decoded) == 12 and other.from_index == 0
    with sqlite3.connect(tmp_path / "ix.sqlite") as db:
        assert db.execute("SELECT count(DISTINCT model), count(*) FROM photos").fetchone() == (
            2,
            24,
        )


def test_rows_measured_another_way_are_measured_again(
    engine, folder, tmp_path, decoded, monkeypatch
):
    """A change in how quality is measured (quality.MEASURES_VERSION) redoes the photos."""
    run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    decoded.clear()
    monkeypatch.setattr(photo_index, "MEASURES_VERSION", photo_index.MEASURES_VERSION + 1)
    again = run(engine, folder, PhotoIndex(tmp_path / "ix.sqlite"))
    assert len(decoded) == 12 and again.from_index == 0


def test_the_model_identity_follows_the_model_file(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"a"), b.write_bytes(b"b")

    def fake(p):
        return SimpleNamespace(path=p, arch="effnet-lite0", preprocess=SimpleNamespace(size=224))

    assert model_identity(fake(a)) != model_identity(fake(b))  # type: ignore[arg-type]
    before = model_identity(fake(a))  # type: ignore[arg-type]
    a.write_bytes(b"a retrained")
    assert model_identity(fake(a)) != before  # type: ignore[arg-type]


def test_a_corrupt_index_is_said_once_moved_aside_and_rebuilt(
    engine, folder, tmp_path, caplog, decoded
):
    path = tmp_path / "ix.sqlite"
    path.write_bytes(b"not a database, a damaged file" * 200)
    with caplog.at_level(logging.WARNING, logger="imagion"):
        got = run(engine, folder, PhotoIndex(path))
    said = [r for r in caplog.records if "photo index" in r.getMessage()]
    assert len(said) == 1 and "could not be read" in said[0].getMessage()
    assert len(got.paths) == 12
    assert [p.name for p in tmp_path.glob("ix.sqlite.unreadable-*")]  # kept, not deleted
    caplog.clear()
    decoded.clear()
    with caplog.at_level(logging.WARNING, logger="imagion"):
        again = run(engine, folder, PhotoIndex(path))
    assert not caplog.records and decoded == [] and again.from_index == 12


def test_a_foreign_sqlite_file_is_not_written_into(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE mine (x)")
    PhotoIndex(path).close()
    with sqlite3.connect(path) as db:  # the file was moved aside, not changed
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='mine'").fetchone() == (0,)
    moved = next(tmp_path.glob("other.db.unreadable-*"))
    with sqlite3.connect(moved) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='mine'").fetchone() == (1,)


class FullDisk:
    """A connection whose writes fail as on a full disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args):
        if sql.startswith(("BEGIN", "INSERT")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args):
        raise sqlite3.OperationalError("database or disk is full")

    def close(self) -> None:
        self.db.close()


def test_a_full_disk_costs_only_the_index(engine, folder, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(photo_index, "BATCH", 4)
    index = PhotoIndex(tmp_path / "ix.sqlite")
    index.db = FullDisk(index.db)  # type: ignore[arg-type,assignment]
    with caplog.at_level(logging.WARNING, logger="imagion"):
        got = run(engine, folder, index)
    assert len(got.paths) == 12 and np.isfinite(got.raw).all()
    said = [r for r in caplog.records if "photo index" in r.getMessage()]
    assert len(said) == 1 and "disk is full" in said[0].getMessage()


KILLED = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from imagion.inference import photo_index
from imagion.inference.engine import open_engine
photo_index.BATCH = 4
real = photo_index.PhotoIndex.store
stored = []
def store(self, *args):
    real(self, *args)
    stored.append(1)
    if len(stored) == 2:  # two batches committed, the third being decoded: kill -9
        os.kill(os.getpid(), signal.SIGKILL)
photo_index.PhotoIndex.store = store
files = sorted(Path({folder!r}).glob("*.jpg"))
photo_index.scored_pass(open_engine(None, "cpu"), files, 4, None, photo_index.PhotoIndex({index!r}))
"""


def test_kill_9_during_indexing_leaves_an_index_the_next_run_uses(
    engine, folder, tmp_path, decoded
):
    index = tmp_path / "ix.sqlite"
    script = KILLED.format(root=str(ROOT), folder=str(folder), index=str(index))
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True)
    assert res.returncode == -9, res.stderr.decode()[-2000:]
    got = run(engine, folder, PhotoIndex(index))
    assert got.from_index == 8 and len(decoded) == 4 and len(got.paths) == 12


def test_shuffled_input_gives_the_same_groups(tmp_path):
    truth = write_bursts(tmp_path / "b", 3, size=(160, 120))
    names = sorted(truth)
    shuffled = [tmp_path / "b" / n for n in np.random.default_rng(4).permutation(names)]
    a = group_images([tmp_path / "b" / n for n in names], index=False)
    b = group_images(shuffled, index=tmp_path / "ix.sqlite")
    c = group_images(shuffled[::-1], index=tmp_path / "ix.sqlite")  # from the index
    as_names = lambda r: [[s.path.name for s in g.shots] for g in r]  # noqa: E731
    assert as_names(a) == as_names(b) == as_names(c)


def test_cli_index_flags(runner, folder, tmp_path):
    chosen = tmp_path / "mine.sqlite"
    res = runner.invoke(app, ["rank", str(folder), "--json", "--index", str(chosen)])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(chosen) as db:
        assert db.execute("SELECT count(*) FROM photos").fetchone() == (12,)
    first = json.loads(res.stdout)
    res = runner.invoke(app, ["pick", str(folder), "--json", "--index", str(chosen)])
    assert res.exit_code == 0, res.output
    default = Path(os.environ["IMAGION_CACHE"]) / "photo-index.sqlite"
    existed = default.exists()
    res = runner.invoke(app, ["rank", str(folder), "--json", "--no-index"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == first  # the same answers with or without the index
    assert default.exists() == existed
    res = runner.invoke(
        app,
        [
            "compare",
            str(files(folder)[0]),
            str(files(folder)[1]),
            "--no-index",
            "--index",
            str(chosen),
        ],
    )
    assert res.exit_code == 1 and "choose one" in res.output


CONCURRENT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from imagion.inference import photo_index
from imagion.inference.engine import open_engine
photo_index.BATCH = 3
files = sorted(Path({folder!r}).glob("*.jpg"))
got = photo_index.scored_pass(open_engine(None, "cpu"), files, 3, None, photo_index.PhotoIndex({index!r}))
assert len(got.paths) == 12
"""


def test_two_runs_at_once_share_the_index(engine, folder, tmp_path, decoded):
    index = tmp_path / "ix.sqlite"
    script = textwrap.dedent(
        CONCURRENT.format(root=str(ROOT), folder=str(folder), index=str(index))
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE) for _ in range(2)
    ]
    for r in runs:
        _, err = r.communicate(timeout=300)
        assert r.returncode == 0, err.decode()[-2000:]
        assert b"photo index" not in err  # neither run had to give the index up
    got = run(engine, folder, PhotoIndex(index))
    assert got.from_index == 12 and decoded == []


def test_grouping_reports_its_progress(tmp_path):
    truth = write_bursts(tmp_path / "b", 2, size=(120, 90))
    stages: set[str] = set()
    group_images(
        [tmp_path / "b" / n for n in truth],
        index=False,
        progress=lambda done, total, stage="", info="": stages.add(stage),
    )
    assert {"neighbours", "grouping"} <= stages


def test_a_chosen_index_path_that_is_not_an_index_is_refused_and_left_untouched(
    runner, folder, tmp_path
):
    from imagion.errors import InputError
    from imagion.inference.photo_index import open_index

    photos = tmp_path / "my-photos"
    photos.mkdir()
    catalog = tmp_path / "me.db"
    with sqlite3.connect(catalog) as db:  # another program's (or imagion's catalog) file
        db.execute("PRAGMA application_id = 1768776039")
        db.execute("CREATE TABLE posts (x)")
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n")
    for chosen in (photos, catalog, text, tmp_path / "missing" / "ix.sqlite"):
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(InputError) as e:
            open_index(chosen)
        assert str(chosen) in str(e.value) and e.value.args
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing moved or made
    res = runner.invoke(app, ["rank", str(folder), "--index", str(text)])
    assert res.exit_code == 1 and "--index" in res.output and text.read_text() == "my notes\n"
    new = tmp_path / "new.sqlite"
    assert open_index(new) is not None and open_index(new) is not None  # new, then ours again


def test_the_photo_index_given_as_a_catalog_is_named_for_what_it_is(runner, folder, tmp_path):
    index = tmp_path / "ix.sqlite"
    PhotoIndex(index).close()
    res = runner.invoke(app, ["info", "--catalog", str(index)])
    assert (
        res.exit_code == 1
        and "photo index" in res.output
        and "another application" not in res.output
    )
