"""--copy-to: a failed copy leaves nothing under the copy's name, names the destination and keeps
the table; long names are copied; no glob reaches the copies of an earlier run."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from imagion.cli import app
from imagion.errors import OptionError
from imagion.files import copy_into
from tests.helpers import write_image


@pytest.fixture
def photos(tmp_path) -> Path:
    for i, b in enumerate((0.2, 0.5, 0.8)):
        write_image(tmp_path / "photos" / f"p{i}.jpg", b, size=48, seed=i)
    return tmp_path / "photos"


def _full_disk(monkeypatch) -> None:
    def half_then_full(src, dst, *a, **k):
        Path(dst).write_bytes(Path(src).read_bytes()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", half_then_full)


@pytest.mark.parametrize("command", ["rank", "pick"])
def test_a_full_disk_leaves_no_partial_copy_and_keeps_the_table(
    runner, photos, tmp_path, monkeypatch, command
):
    dest = tmp_path / "picks"
    _full_disk(monkeypatch)
    extra = ["--no-suggest"] if command == "rank" else []
    res = runner.invoke(app, [command, str(photos), *extra, "--copy-to", str(dest), "--json"])
    assert res.exit_code == 1
    assert list(dest.iterdir()) == []  # no partial file, no empty one, no temporary
    assert len(json.loads(res.stdout)) >= 1  # the results came first
    (line,) = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert f"--copy-to {dest}/01_" in line and "No space left" in line


def test_a_source_gone_after_scoring_is_named_and_leaves_nothing(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(OptionError) as e:
        copy_into(tmp_path / "gone.jpg", folder, "01_5.0_gone.jpg", "copy_to")
    assert e.value.option == "copy_to" and e.value.value == folder / "01_5.0_gone.jpg"
    assert "gone.jpg is gone" in str(e.value)
    assert list(folder.iterdir()) == []


def test_a_251_character_name_is_copied_under_a_shorter_name(runner, photos, tmp_path):
    long = photos / ("x" * 247 + ".jpg")  # 251 characters: with "01_5.0_" it would not fit
    shutil.copy(photos / "p1.jpg", long)
    dest = tmp_path / "picks"
    res = runner.invoke(app, ["rank", str(photos), "--no-suggest", "--copy-to", str(dest)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in dest.iterdir())
    assert len(names) == len(list(photos.iterdir()))
    assert all(len(n.encode()) <= 255 and n.endswith(".jpg") for n in names)


@pytest.mark.parametrize(
    "pattern,recursive", [("**/*.jpg", True), ("**/*.jpg", False), ("*/*.jpg", False)]
)
def test_a_glob_reaching_the_copies_is_refused(runner, photos, pattern, recursive):
    (photos / "sub").mkdir()
    write_image(photos / "sub" / "q.jpg", 0.4, size=48)
    dest = photos / "sub" / "picks"
    args = ["rank", f"{photos}/{pattern}", *(["-r"] if recursive else []), "--copy-to", str(dest)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "ranked from this folder" in res.stderr
    assert not dest.exists()


def test_a_glob_of_one_folder_may_copy_beside_it(runner, photos):
    dest = photos / "picks"
    res = runner.invoke(app, ["rank", f"{photos}/*.jpg", "--no-suggest", "--copy-to", str(dest)])
    assert res.exit_code == 0, res.output


def test_copy_to_a_dangling_link_says_so(runner, photos, tmp_path):
    link = tmp_path / "picks"
    link.symlink_to(tmp_path / "nowhere")
    res = runner.invoke(app, ["rank", str(photos), "--copy-to", str(link)])
    assert res.exit_code == 1
    assert "is a link to" in res.stderr and "does not exist" in res.stderr
    assert "is a file" not in res.stderr
