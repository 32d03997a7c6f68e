"""A folder scan says how many files it left out, and why, in one line; a folder of only such
files says that, not "add -r"."""

from __future__ import annotations

from imagion.cli import app
from tests.helpers import write_image


def test_files_imagion_does_not_read_are_counted(runner, tmp_path):
    write_image(tmp_path / "a.jpg", 0.5, size=48)
    for name in ("clip.mov", "notes.txt", "more.TXT", "README"):
        (tmp_path / name).write_bytes(b"not a photo")
    res = runner.invoke(app, ["rank", str(tmp_path), "--no-suggest", "--json"])
    assert res.exit_code == 0, res.output
    (line,) = [x for x in res.stderr.splitlines() if "left out" in x]
    assert line == "left out 4 files imagion does not read (.txt, .mov, no extension)"


def test_a_folder_of_only_such_files_says_so(runner, tmp_path):
    (tmp_path / "clip.mov").write_bytes(b"not a photo")
    res = runner.invoke(app, ["rank", str(tmp_path)])
    assert res.exit_code == 1
    assert "left out 1 file imagion does not read (.mov)" in res.stderr
    assert "add -r" not in res.stderr
    write_image(tmp_path / "sub" / "b.jpg", 0.5, size=48)  # now -r would find one
    res = runner.invoke(app, ["pick", str(tmp_path)])
    assert res.exit_code == 1 and "add -r" in res.stderr and "left out 1 file" in res.stderr
