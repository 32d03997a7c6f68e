"""`rank --engine ray` and `featurize --engine ray` on a local Ray (2 CPUs here): the same scores
as the in-process path, unreadable files as rows with their reason (in any block), `--top` by
Ray, a killed worker retried without duplicate rows, the table written atomically and never over
anything already there, imagion's progress and none of Ray's console noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_image

ray = pytest.importorskip("ray", reason="Ray Data is the optional extra imagion[ray]")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.slow  # a local Ray takes ~7 s to start


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray for the module; the fail-once hook armed but disabled (its marker exists)."""
    marker = tmp_path_factory.mktemp("ray") / "failed-once"
    marker.write_text("disabled\n")
    os.environ["IMAGION_RAY_FAIL_ONCE"] = str(marker)
    yield marker
    ray.shutdown()
    os.environ.pop("IMAGION_RAY_FAIL_ONCE", None)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for k in range(30):
        write_image(folder / f"p{k:02d}.jpg", 0.1 + 0.8 * ((k * 7) % 30) / 30, size=48, seed=k)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    return folder


def _table(path: Path) -> dict[str, dict]:
    rows = pq.read_table(path).to_pylist()
    assert len(rows) == len({r["path"] for r in rows})  # one row per file, never two
    return {r["path"]: r for r in rows}


def test_same_scores_as_in_process_bad_files_as_rows_and_top(local_ray, photos, tmp_path):
    import imagion

    local = imagion.rank([photos])
    out = tmp_path / "scores.parquet"
    decoy = tmp_path / f"scores.parquet.imagion-tmp-{os.getpid()}"  # not this run's: kept
    decoy.mkdir()
    (decoy / "mine.txt").write_text("keep me\n")
    result = imagion.rank_on_ray([photos], out=out, top=5)
    rows = _table(out)
    assert len(rows) == 32 and result.scored == 30 and result.failed == 2
    for item in local:
        row = rows[str(item.path)]
        assert abs(row["score"] - item.score) < 1e-4 and row["error"] is None
        assert item.low is not None and item.high is not None  # the bundled model has a range
        assert abs(row["score_low"] - item.low) < 1e-4 and abs(row["score_high"] - item.high) < 1e-4
    for name in ("broken.jpg", "empty.png"):
        row = rows[str(photos / name)]
        assert row["error"] and name in row["error"] and np.isnan(row["score"])
    assert [r["path"] for r in result.top] == [str(r.path) for r in local[:5]]
    assert list(tmp_path.glob("*.imagion-tmp-*")) == [decoy]  # nothing half-written left
    assert (decoy / "mine.txt").read_text() == "keep me\n"  # and nothing of another's removed


def test_an_unreadable_file_beyond_the_first_block_and_progress(local_ray, tmp_path, monkeypatch):
    """Blocks of 2 rows: the first blocks have no error, the last one has; every block has the
    same columns and types (error: string), so the part files read as one table."""
    import pyarrow as pa

    import imagion
    import imagion.scale.ray_data as ray_data

    folder = tmp_path / "few"
    folder.mkdir()
    for k in range(6):
        write_image(folder / f"a{k}.jpg", 0.2 + 0.1 * k, size=32, seed=k)
    (folder / "z_broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setattr(ray_data, "ROWS_PER_BLOCK", 2)
    events: list[tuple[int, int, str]] = []
    out = tmp_path / "few.parquet"
    result = imagion.rank_on_ray(
        [folder],
        out=out,
        top=2,
        batch_size=2,
        progress=lambda done, total, stage="", info="": events.append((done, total, stage)),
    )
    assert result.scored == 6 and result.failed == 1 and len(result.top) == 2
    assert "z_broken.jpg" in result.problems[0]
    table = pq.read_table(out)
    assert table.schema.field("error").type == pa.string()
    assert table.schema.field("score").type == pa.float64()
    assert len(list(out.iterdir())) > 1  # several part files, one schema
    scoring = [e for e in events if e[2] == "scoring"]
    assert scoring and scoring[-1] == (7, 7, "scoring")
    assert all(total == 7 for _, total, _ in events)


@pytest.mark.parametrize("kind", ["folder", "file", "link", "fifo"])
def test_nothing_at_out_is_replaced(local_ray, photos, tmp_path, runner, kind):
    """Whatever is at --out (a folder of photos, a file, a dangling link, a FIFO) is refused
    before any work, with one line naming the flag and the path; it is left as it was."""
    from imagion.cli import app

    out = tmp_path / "X.parquet"
    if kind == "folder":
        out.mkdir()
        (out / "photo.jpg").write_bytes((photos / "p00.jpg").read_bytes())
    elif kind == "file":
        out.write_text("mine\n")
    elif kind == "link":
        out.symlink_to(tmp_path / "nowhere")
    else:
        os.mkfifo(out)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = runner.invoke(app, ["rank", str(photos), "--engine", "ray", "--out", str(out)])
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out ") and str(out) in lines[0]
    assert "`out`" not in lines[0] and "choose another name" in lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    if kind == "folder":
        assert (out / "photo.jpg").read_bytes() == (photos / "p00.jpg").read_bytes()


def test_a_killed_worker_is_retried_without_duplicate_rows(local_ray, photos, tmp_path):
    import imagion

    local_ray.unlink()  # the next actor call kills its worker process once
    out = tmp_path / "again.parquet"
    result = imagion.rank_on_ray([photos], out=out)
    assert local_ray.is_file()  # a worker did die
    assert len(_table(out)) == 32 and result.scored == 30


def test_cli_json_and_the_missing_extra(local_ray, photos, tmp_path, runner, monkeypatch):
    from imagion.cli import app

    out = tmp_path / "cli.parquet"
    res = runner.invoke(
        app, ["rank", str(photos), "--engine", "ray", "--out", str(out), "--top", "3", "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["scored"] == 30 and data["failed"] == 2 and len(data["top"]) == 3
    assert Path(data["table"]) == out and out.is_dir()
    monkeypatch.setitem(sys.modules, "ray", None)  # as on the light install (`pip install -e .`)
    res = runner.invoke(app, ["rank", str(photos), "--engine", "ray", "--out", str(out)])
    assert res.exit_code == 1 and "pip install -e '.[ray]'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_ray_run_shows_none_of_rays_own_noise(local_ray, photos, tmp_path):
    """A whole `imagion rank --engine ray` process: stderr holds imagion's lines only (no token
    notice, no core_worker line, no Ray Data warning)."""
    out = tmp_path / "quiet.parquet"
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # as in a new shell
    env["PYTHONPATH"] = str(Path(__file__).parents[1])
    command = ["rank", str(photos), "--engine", "ray", "--out", str(out), "--top", "2"]
    run = subprocess.run(
        [sys.executable, "-m", "imagion", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    ours = ("scoring on Ray Data", "skipped: ", "scored ", "note: ")
    assert lines and all(line.startswith(ours) for line in lines), run.stderr
    assert out.is_dir()


def test_featurize_on_ray_fills_the_cache_train_reads(local_ray, tmp_path, monkeypatch, runner):
    from imagion.cli import app
    from tests.helpers import scored_catalog

    monkeypatch.setenv("IMAGION_CACHE", str(tmp_path / "cache"))
    db = scored_catalog(tmp_path, 2, 4)
    res = runner.invoke(app, ["featurize", "--catalog", str(db), "--engine", "ray", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["computed"] == 8
    res = runner.invoke(app, ["featurize", "--catalog", str(db), "--json"])
    assert json.loads(res.stdout)["cached"] == 8  # what train and eval read
    # offline labels at scale: the same cache, so labelling needs the images no more
    for image in tmp_path.rglob("*.jpg"):
        image.unlink()
    res = runner.invoke(app, ["labels", "--catalog", str(db), "-p", "local", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["providers"][0]
    assert summary["labelled"] == 8 and summary["problems"] == []


def test_a_features_table_keeps_thumbnails_and_flags_as_scoring_does(local_ray, tmp_path, runner):
    """`--features` tables keep each photo's block thumbnail: a brightened copy is flagged beside
    its original when grouping from the table, as when scoring the photos."""
    import imagion
    from imagion.cli import app
    from imagion.inference.highlights import THUMB_BYTES
    from tests.test_near_copy_clipping import write_brightened_pair

    folder = tmp_path / "pair"
    write_brightened_pair(folder / "original.jpg", folder / "brighter.jpg")
    out = tmp_path / "pair.parquet"
    imagion.rank_on_ray([folder], out=out, features=True)
    rows = _table(out)
    assert all(len(r["thumb"]) == THUMB_BYTES for r in rows.values())
    res = runner.invoke(app, ["rank", "--groups", "--from-table", str(out), "--json"])
    assert res.exit_code == 0, res.output
    flags = {Path(r["path"]).name: r["quality"]["flags"] for r in json.loads(res.stdout)}
    assert flags == {"brighter.jpg": ["highlights clipped"], "original.jpg": []}
