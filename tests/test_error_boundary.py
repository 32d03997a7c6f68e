"""Every user-facing failure is one `error:` line and exit 1; nothing is half-written."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import torch
import typer

from imagion.cli import app
from imagion.cli.app import handle_errors
from imagion.cli.console import emit_json
from imagion.files import TMP_SUFFIX
from imagion.models.checkpoints import read_checkpoint
from tests.helpers import write_image


def _one_error_line(res, needle: str) -> None:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in res.stderr, res.stderr


def _bad_checkpoint(src: Path, dest: Path, change) -> Path:
    ckpt = read_checkpoint(src)
    change(ckpt)
    torch.save(ckpt, dest)
    return dest


def _nan_weights(c: dict) -> None:
    key = next(iter(c["state_dict"]))
    c["state_dict"][key] = torch.full_like(c["state_dict"][key], float("nan"))


BAD_CHECKPOINTS = {
    "bogus config": (lambda c: c.update(config={"layers": "many"}), "config does not fit"),
    "config not a mapping": (lambda c: c.update(config=[1, 2]), "not a mapping of options"),
    "empty calibration": (
        lambda c: c.update(calibration={"raw_quantiles": []}),
        "no raw_quantiles",
    ),
    "absurd input size": (lambda c: c["preprocess"].update(size=100_000), "input size 100000"),
    "unknown arch": (lambda c: c.update(arch="resnet-9000"), "unknown architecture"),
    "NaN weights": (_nan_weights, "not finite (NaN or inf)"),
}


@pytest.mark.parametrize("case", BAD_CHECKPOINTS, ids=list(BAD_CHECKPOINTS))
def test_damaged_checkpoints_are_refused_in_one_line(case, trained, tmp_path, runner):
    change, needle = BAD_CHECKPOINTS[case]
    bad = _bad_checkpoint(trained[1], tmp_path / "bad.pt", change)
    image = write_image(tmp_path / "a.jpg", 0.5)
    other = write_image(tmp_path / "b.jpg", 0.6)
    for args in (["rank", str(image)], ["compare", str(image), str(other)]):
        res = runner.invoke(app, [*args, "--model", str(bad), "--json"])
        _one_error_line(res, needle)
        assert res.stdout == ""


def test_eval_pairs_must_be_positive(trained, runner):
    res = runner.invoke(
        app, ["eval", "--catalog", str(trained[0]), "--model", str(trained[1]), "--pairs", "-5"]
    )
    _one_error_line(res, "--pairs -5: sample at least 1 pair")


def test_unwritable_outputs_fail_before_the_work(trained, tmp_path, runner):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    image = write_image(tmp_path / "a.jpg", 0.5)
    res = runner.invoke(
        app, ["rank", str(image), "--model", str(trained[1]), "--copy-to", str(blocker / "sub")]
    )
    _one_error_line(res, "--copy-to")
    assert "ranked" not in res.stderr  # refused before scoring
    res = runner.invoke(
        app, ["train", "--catalog", str(trained[0]), "--out", str(blocker), "--epochs", "1"]
    )
    _one_error_line(res, "is a file, not a folder")


def test_json_output_never_holds_nan(capsys):
    emit_json({"score": float("nan"), "rows": [float("inf"), 1.5], "n": 3})
    assert json.loads(capsys.readouterr().out) == {"score": None, "rows": [None, 1.5], "n": 3}


def test_stale_temporary_checkpoints_are_cleaned_up(trained, tmp_path, runner):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / f".last.pt.x1y2{TMP_SUFFIX}"
    stale.write_bytes(b"\x00" * 1000)  # what kill -9 during a checkpoint write leaves
    fresh = out / f".best.pt.a1b2{TMP_SUFFIX}"
    fresh.write_bytes(b"\x00")  # another writer may still own this one
    old = time.time() - 3600
    os.utime(stale, (old, old))
    res = runner.invoke(
        app,
        [
            "train",
            "--catalog",
            str(trained[0]),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    assert not stale.exists() and fresh.exists()
    assert "removed 1 temporary file" in res.stderr
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert leftovers == [fresh.name]


def test_os_errors_are_one_line(runner, tmp_path):
    folder = tmp_path / "cat.db"
    folder.mkdir()
    res = runner.invoke(app, ["info", "--catalog", str(folder)])
    _one_error_line(res, "is a folder")


@pytest.mark.parametrize(
    ("exc", "shown"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.IntegrityError("UNIQUE constraint failed: posts.id"), True),
        (sqlite3.DatabaseError("file is not a database"), True),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), False),
        (sqlite3.InterfaceError("Error binding parameter 1"), False),
    ],
)
def test_only_the_catalog_files_state_is_a_catalog_error(exc, shown, capsys):
    """A locked, broken or foreign catalog is one line; a wrong statement or a closed
    connection is imagion's bug and keeps its traceback."""

    def fails() -> None:
        raise exc

    if shown:
        with pytest.raises(typer.Exit):
            handle_errors(fails)()
        err = capsys.readouterr().err  # the one translation (store.sqlite_error), by code
        assert err.startswith("error: catalog ") and str(exc) in err
    else:
        with pytest.raises(type(exc)):
            handle_errors(fails)()
