"""One damaged image never stops a run (issue #35): whatever Pillow raises while opening,
decoding, turning upright or reading the capture time of one file is that file's problem, in
every command; a seeded mutation fuzz finds no exception escaping the decode layer."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from imagion.cli import app
from imagion.errors import InputError
from imagion.images import capture_time, decoded, load_square, open_image
from tests.damaged_images import damaged, fuzz, rotated_with_text_in_short_tag
from tests.helpers import write_image


def _shoot(tmp_path: Path) -> Path:
    folder = tmp_path / "shoot"
    for k in range(2):
        write_image(folder / f"good{k}.jpg", 0.3 + 0.3 * k, seed=k)
    for name, data in damaged().items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", sorted(damaged()))
def test_each_reported_file_is_an_input_error_naming_it(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(damaged()[name])
    try:
        load_square(path, 32)
    except InputError as exc:
        assert name in str(exc)
    assert capture_time(path) is None


def test_a_rotated_photo_with_text_in_a_short_tag_is_still_turned_upright():
    for fmt in ("JPEG", "WEBP"):
        im = open_image(rotated_with_text_in_short_tag(fmt), "x")
        assert im.size == (24, 16)
        assert decoded(im, 64, "x").size == (16, 24)  # Orientation 6: turned, not refused


def test_rank_pick_compare_and_groups_go_on_past_damaged_files(tmp_path, runner):
    folder = _shoot(tmp_path)
    for cmd in (
        ["rank", str(folder), "--no-suggest", "--json"],
        ["rank", str(folder), "--groups", "--json"],
        ["pick", str(folder), "-n", "2", "--json"],
    ):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, (cmd, res.output)
        assert "Traceback" not in res.output
        assert "good0.jpg" in res.stdout and "good1.jpg" in res.stdout
    bad = folder / "ihdr.png"
    res = runner.invoke(app, ["compare", str(folder / "good0.jpg"), str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.startswith("error:") and "ihdr.png" in res.output


def test_import_keeps_every_post_past_damaged_images(tmp_path, runner):
    folder = _shoot(tmp_path)
    rows = ["account,image,likes,posted_at"]
    for k, name in enumerate(sorted(os.listdir(folder))):
        rows.append(f"me,{folder / name},{10 + k},2024-01-{k + 1:02d}")
    manifest = tmp_path / "posts.csv"
    manifest.write_text("\n".join(rows) + "\n")
    db = tmp_path / "c.sqlite"
    res = runner.invoke(app, ["import", str(manifest), "--catalog", str(db)])
    assert res.exit_code == 0, res.output
    import sqlite3

    with sqlite3.connect(db) as con:
        n, with_image = con.execute("SELECT COUNT(*), COUNT(image) FROM posts").fetchone()
    assert n == len(rows) - 1
    assert with_image >= 2


def test_ray_rows_for_damaged_files_are_failures_not_a_failed_job(tmp_path):
    from imagion.scale.ray_data import _try_load

    folder = _shoot(tmp_path)
    for name in damaged():
        got = _try_load(str(folder / name), 32)
        assert isinstance(got, str | bytes) or got.shape == (32, 32, 3)


def _paths():
    def opened(data: bytes) -> None:
        open_image(data, "x").close()

    def decode_large(data: bytes) -> None:
        im = open_image(data, "x")
        try:
            decoded(im, 512, "x")
        finally:
            im.close()

    def when(data: bytes) -> None:
        t = capture_time(io.BytesIO(data))
        assert t is None or isinstance(t, float)

    return [opened, lambda d: load_square(d, 32, name="x"), decode_large, when]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns on every damaged TIFF tag
def test_fuzz_no_exception_escapes_the_decode_layer():
    """Seeded and bounded (bench/fuzz_decode.py runs it for longer)."""
    tried, escapes = fuzz(_paths(), seed=35, seconds=8.0)
    assert tried > 100
    assert not escapes, json.dumps([(fmt, err) for fmt, err, _ in escapes[:5]])
