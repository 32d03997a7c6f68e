"""Messages that name the right thing: a folder given to compare, one photo compared with itself,
a full disk while a sheet is written (the sheet named, nothing left behind)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from imagion.cli import app
from tests.helpers import write_image


def test_compare_a_folder_says_it_is_a_folder(runner, tmp_path):
    a = write_image(tmp_path / "a.jpg", 0.5)
    res = runner.invoke(app, ["compare", str(tmp_path), str(a)])
    assert res.exit_code == 1
    assert f"error: {tmp_path}: is a folder" in res.stderr and "no such file" not in res.stderr


def test_compare_one_photo_with_itself_says_so(runner, tmp_path):
    import imagion
    from imagion.errors import InputError

    a = write_image(tmp_path / "a.jpg", 0.5)
    (tmp_path / "link.jpg").symlink_to(a)
    for other in (a, tmp_path / "link.jpg"):
        res = runner.invoke(app, ["compare", str(a), str(other), "--no-index"])
        assert res.exit_code == 1
        assert res.stderr.strip() == (
            f"error: {a} and {other} are the same file: give two different photos to compare."
        )
    with pytest.raises(InputError, match="same file"):
        imagion.compare(a, a, index=False)
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(a.read_bytes())  # the same bytes in another file: compared (a toss-up)
    assert runner.invoke(app, ["compare", str(a), str(copy), "--no-index"]).exit_code == 0


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_a_full_disk_while_writing_the_sheet_names_it(runner, tmp_path, monkeypatch, suffix):
    for i in range(2):
        write_image(tmp_path / "in" / f"p{i}.jpg", 0.3 + 0.4 * i, size=48, seed=i)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if suffix == ".png":
        monkeypatch.setattr("matplotlib.figure.Figure.savefig", full)
    else:
        monkeypatch.setattr(Path, "write_text", full)
    sheet = tmp_path / "out" / f"sheet{suffix}"
    sheet.parent.mkdir()
    res = runner.invoke(app, ["rank", str(tmp_path / "in"), "--no-suggest", "--sheet", str(sheet)])
    assert res.exit_code == 1
    assert f"error: {sheet}: No space left on device" in res.stderr
    assert list(sheet.parent.iterdir()) == []  # no temporary left
