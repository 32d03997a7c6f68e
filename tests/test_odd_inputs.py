"""Odd inputs: formats that only look like photos, impossible dates, unreadable folders, damaged cache entries, huge CSV lines, SIGTERM while labelling."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from imagion.cli import app
from imagion.errors import ImagionError
from tests.helpers import write_image


def test_an_eps_named_jpg_is_never_decoded(tmp_path):
    from imagion.images import load_square, open_image

    eps = tmp_path / "x.jpg"
    eps.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
    )
    with pytest.raises(ImagionError, match="not a photo"):
        open_image(eps)
    with pytest.raises(ImagionError, match="not a photo"):
        load_square(eps.read_bytes(), 32, name="upload.jpg")


def test_iso_basic_date_is_that_day():
    from imagion.catalog.values import time_value

    assert time_value("20200101") == 1577836800
    assert time_value(20200101) == 1577836800
    assert time_value("1600000000") == 1600000000  # ten digits: seconds, as before
    # a date's shape but no real day: refused, not stored as a day of 1970
    for bad in ("20201340", "20200230", 20201399):
        with pytest.raises(ValueError, match="not a date"):
            time_value(bad)


def test_an_unreadable_folder_costs_its_own_files_only(tmp_path, monkeypatch, runner):
    from imagion.files import walk_files

    good, locked = tmp_path / "good", tmp_path / "locked"
    write_image(good / "a.jpg", 0.3)
    write_image(locked / "b.jpg", 0.6)
    real = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, problems = walk_files(tmp_path)
    assert files == [good / "a.jpg"]
    assert len(problems) == 1 and "locked" in problems[0] and "Permission denied" in problems[0]
    res = runner.invoke(app, ["rank", str(tmp_path), "-r", "--no-suggest", "--json"])
    assert res.exit_code == 0, res.output
    assert [Path(r["path"]).name for r in json.loads(res.stdout)] == ["a.jpg"]
    assert "locked" in res.stderr


def test_a_feature_cache_entry_of_the_wrong_shape_is_rebuilt(tmp_path):
    import numpy as np

    from imagion.models.caches import feature_folder, frozen_features
    from imagion.models.registry import build_model

    photo = write_image(tmp_path / "p.jpg", 0.5)
    model = build_model("effnet-lite0", image_size=64).eval()
    folder = feature_folder(model, tmp_path)
    folder.mkdir(parents=True)
    np.save(folder / f"{'c' * 64}.npy", np.zeros((7, 3), dtype=np.float32))
    feats = frozen_features(model, [str(photo)], ["c" * 64], tmp_path, torch.device("cpu"))
    assert feats.ok.all() and feats.x.shape == (1, 1280) and float(feats.x.abs().sum()) > 0
    assert np.load(folder / f"{'c' * 64}.npy").shape == (1280,)


def test_csv_with_a_huge_line_and_a_semicolon_csv(tmp_path, monkeypatch):
    from imagion.catalog import formats

    monkeypatch.setattr(formats, "MAX_CSV_LINE", 1000)
    write_image(tmp_path / "a.jpg", 0.4)
    (tmp_path / "long.csv").write_text(
        "account,image,likes,posted_at\nx,a.jpg,10,2020-01-01\n" + "y" * 5000, encoding="utf-8"
    )
    problems: list[str] = []
    long = tmp_path / "long.csv"
    posts = formats.parse_csv(long, *formats.csv_table(long, problems), problems)
    assert len(posts) == 1 and any("longer than 1,000 characters" in p for p in problems)
    (tmp_path / "semi.csv").write_text(
        "account;image;likes;posted_at\nx;a.jpg;12;2020-01-01\n", encoding="utf-8"
    )
    problems = []
    semi = tmp_path / "semi.csv"
    posts = formats.parse_csv(semi, *formats.csv_table(semi, problems), problems)
    assert [p.likes for p in posts] == [12] and not problems


def test_sigterm_is_handled_as_ctrl_c_while_labelling():
    import signal

    from imagion.cli.console import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.5) if hasattr(signal, "sigtimedwait") else None
    assert signal.getsignal(signal.SIGTERM) == before
