"""What imagion writes never replaces the user's files: copies, crops, sheets, outputs that are folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagion.cli import app
from tests.helpers import write_image


@pytest.fixture
def three_photos(tmp_path) -> Path:
    src = tmp_path / "photos"
    for i, b in enumerate((0.2, 0.5, 0.8)):
        write_image(src / f"p{i}.jpg", b, size=48, seed=i)
    return src


def test_copy_to_never_replaces_a_file(runner, three_photos, tmp_path):
    dest = tmp_path / "picks"
    args = ["rank", str(three_photos), "--copy-to", str(dest), "--top", "1", "--no-suggest"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (first,) = dest.iterdir()
    first.write_bytes(b"the user's edited pick")
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in dest.iterdir())
    assert len(names) == 2 and first.read_bytes() == b"the user's edited pick"
    assert any(" (2)" in n for n in names)


def test_copy_to_the_ranked_folder_is_refused(runner, three_photos):
    before = sorted(three_photos.iterdir())
    for extra in ([], ["-r"]):
        res = runner.invoke(
            app, ["rank", str(three_photos), *extra, "--copy-to", str(three_photos)]
        )
        assert res.exit_code == 1 and "ranked from this folder" in res.output
    res = runner.invoke(
        app, ["rank", str(three_photos / "p0.jpg"), "--crops", str(three_photos / "x" / "..")]
    )
    assert res.exit_code == 1 and "--crops" in res.output
    assert sorted(three_photos.iterdir()) == before


def test_crops_of_two_photos_with_one_stem_both_kept(tmp_path):
    from PIL import Image

    from imagion.inference.crops import write_crop

    out = tmp_path / "crops"
    a = write_crop(out, Path("A/IMG.png"), None, Image.new("RGB", (8, 8), "red"))
    b = write_crop(out, Path("B/IMG.jpg"), None, Image.new("RGB", (8, 8), "blue"))
    assert a != b and a is not None and b is not None
    with Image.open(a) as ia, Image.open(b) as ib:
        assert ia.getpixel((4, 4))[0] > 200 and ib.getpixel((4, 4))[2] > 200


def test_outputs_that_are_folders_are_refused_before_the_work(runner, trained, tmp_path):
    db, ckpt = trained
    folder = tmp_path / "out.csv"
    folder.mkdir()
    res = runner.invoke(
        app, ["eval", "--catalog", str(db), "--model", str(ckpt), "--pairs-out", str(folder)]
    )
    assert res.exit_code == 1 and "is a folder" in res.output
    stats = tmp_path / "stats.json"
    stats.mkdir()
    res = runner.invoke(app, ["labels", "--catalog", str(db), "--save-stats", str(stats)])
    assert res.exit_code == 1 and "is a folder" in res.output and "labelled" not in res.output


def test_the_sheet_is_capped(tmp_path, monkeypatch):
    from imagion.inference import sheet
    from imagion.inference.rank import Ranked

    monkeypatch.setattr(sheet, "MAX_SHEET", 3)
    items = [
        Ranked(path=write_image(tmp_path / f"p{k}.jpg", 0.1 * k, seed=k), score=5.0, raw=0.0)
        for k in range(6)
    ]
    out = sheet.write_sheet(items, tmp_path / "s.html", "t")
    assert out.read_text().count("<figure>") == 3


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".html"])
def test_a_sheet_replaces_only_a_sheet(runner, three_photos, tmp_path, suffix):
    sheet = tmp_path / f"sheet{suffix}"
    args = ["rank", str(three_photos), "--no-suggest", "--sheet", str(sheet)]
    assert runner.invoke(app, args).exit_code == 0
    first = sheet.read_bytes()
    res = runner.invoke(app, args)  # its own sheet: replaced by the new one
    assert res.exit_code == 0, res.output
    photo = tmp_path / f"holiday{suffix}"
    photo.write_bytes(first if suffix == ".html" else (three_photos / "p0.jpg").read_bytes())
    if suffix == ".html":
        photo.write_text("<html>my own page</html>")
    before = photo.read_bytes()
    res = runner.invoke(app, ["rank", str(three_photos), "--no-suggest", "--sheet", str(photo)])
    assert res.exit_code == 1 and "nothing is replaced" in res.stderr, res.output
    assert photo.read_bytes() == before
