"""`pick --from-table` and `rank --groups --from-table`: the photos of a table `rank --engine ray
--features` wrote, grouped and picked without scoring them again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imagion.cli import app
from imagion.inference import photo_index
from imagion.inference.engine import open_engine
from imagion.scale.tables import schema
from tests.bursts import write_bursts

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def shoot(tmp_path_factory) -> tuple[Path, Path]:
    """8 sources × 5 near-copies, and their table as a Ray run writes it (a folder of Parquet
    files with the ray path's columns: the same schema, features as the engine gives them)."""
    root = tmp_path_factory.mktemp("table")
    folder = root / "shoot"
    write_bursts(folder, 8, size=(200, 150))
    files = sorted(folder.glob("*.jpg"))
    engine = open_engine(None, "cpu")
    got = photo_index.scored_pass(engine, files, None, None, None)
    scores = engine.calibration.score(got.raw)
    rows = {
        "path": [str(p) for p in got.paths] + [str(folder / "broken.jpg")],
        "score": [*map(float, scores), float("nan")],
        "score_low": [float("nan")] * (len(files) + 1),
        "score_high": [float("nan")] * (len(files) + 1),
        "raw": [*map(float, got.raw), float("nan")],
        "error": [None] * len(files) + [f"{folder / 'broken.jpg'}: not an image"],
        "features": [list(map(float, f)) for f in got.features] + [None],  # type: ignore[union-attr]
        "quality": [list(map(float, q)) for q in got.quality] + [None],
        "thumb": [t.tobytes() for t in got.thumbs] + [None],
        "hash": [int(h) for h in np.asarray(got.hashes, np.uint64).view(np.int64)] + [None],
        "colour": [list(map(float, c)) for c in got.colours] + [None],
        "taken": [*got.times, None],
    }
    table = root / "scores.parquet"
    table.mkdir()
    pq.write_table(pa.table(rows, schema=schema(features=True)), table / "part-0.parquet")
    return folder, table


def test_pick_from_a_table_picks_what_scoring_the_photos_picks(runner, shoot):
    folder, table = shoot
    res = runner.invoke(app, ["pick", "--from-table", str(table), "-n", "4", "--json"])
    assert res.exit_code == 0, res.output
    scored = runner.invoke(app, ["pick", str(folder), "-n", "4", "--json", "--no-index"])
    assert scored.exit_code == 0, scored.output
    picked = json.loads(res.stdout)
    assert [p["path"] for p in picked] == [p["path"] for p in json.loads(scored.stdout)]
    assert [p["group_size"] for p in picked] == [p["group_size"] for p in json.loads(scored.stdout)]


def test_rank_groups_from_a_table_and_its_failed_rows(runner, shoot):
    _, table = shoot
    res = runner.invoke(app, ["rank", "--groups", "--from-table", str(table), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 40 and len({r["group"] for r in rows}) >= 7
    assert "broken.jpg" in res.stderr


def test_a_table_without_features_or_with_paths_too(runner, shoot, tmp_path):
    folder, table = shoot
    bare = tmp_path / "bare.parquet"
    pq.write_table(pq.read_table(str(table)).drop(["features"]), bare)
    res = runner.invoke(app, ["pick", "--from-table", str(bare)])
    assert res.exit_code == 1 and "--features" in res.output
    res = runner.invoke(app, ["pick", str(folder), "--from-table", str(table)])
    assert res.exit_code == 1 and "choose one" in res.output
    res = runner.invoke(app, ["rank", "--from-table", str(table)])
    assert res.exit_code == 1 and "--groups" in res.output


def test_a_table_flags_a_brightened_copy_beside_its_original_and_an_older_table_does_not(tmp_path):
    """The table keeps each photo's block thumbnail, so grouping from it flags clipped highlights
    beside a darker copy as scoring the photos does; a table written before has no thumbnails:
    no such flag, and nothing else changes."""
    from imagion.inference.from_table import read_table
    from tests.test_near_copy_clipping import write_brightened_pair

    folder = tmp_path / "pair"
    write_brightened_pair(folder / "original.jpg", folder / "brighter.jpg")
    files = sorted(folder.glob("*.jpg"))
    got = photo_index.scored_pass(open_engine(None, "cpu"), files, None, None, None)
    rows = {
        "path": [str(p) for p in got.paths],
        "score": [5.0, 5.0],
        "score_low": [float("nan")] * 2,
        "score_high": [float("nan")] * 2,
        "raw": list(map(float, got.raw)),
        "error": [None, None],
        "features": [list(map(float, f)) for f in got.features],  # type: ignore[union-attr]
        "quality": [list(map(float, q)) for q in got.quality],
        "thumb": [t.tobytes() for t in got.thumbs],
        "hash": [int(h) for h in np.asarray(got.hashes, np.uint64).view(np.int64)],
        "colour": [list(map(float, c)) for c in got.colours],
        "taken": got.times,
    }
    table = tmp_path / "pair.parquet"
    pq.write_table(pa.table(rows, schema=schema(features=True)), table)
    flags = {p.name: q.flags for p, q in zip(*_paths_and_qualities(read_table(table)), strict=True)}
    assert flags == {"brighter.jpg": ["highlights clipped"], "original.jpg": []}
    older = tmp_path / "older.parquet"
    pq.write_table(pq.read_table(str(table)).drop(["thumb"]), older)
    flags = {p.name: q.flags for p, q in zip(*_paths_and_qualities(read_table(older)), strict=True)}
    assert flags == {"brighter.jpg": [], "original.jpg": []}


def _paths_and_qualities(got):  # type: ignore[no-untyped-def]
    assert got.qualities is not None
    return got.paths, got.qualities
