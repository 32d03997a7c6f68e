"""Every bad training option value is one line and exit 1; --resume keeps the run's recipe."""

from __future__ import annotations

import pytest

from imagion.cli import app
from tests.helpers import scored_catalog


@pytest.mark.parametrize(
    "option",
    [
        ["--lr", "nan"],
        ["--lr", "1e300"],
        ["--lr", "inf"],
        ["--weight-decay", "-1"],
        ["--weight-decay", "nan"],
        ["--image-size", "100000"],
        ["--seed", "-1"],
        ["--patience", "0"],
        ["--batch-size", "-1"],
        ["--dropout", "1.5"],
        ["--tone-augment", "-1"],
    ],
)
def test_bad_training_values_are_one_line(runner, tmp_path, option):
    db = scored_catalog(tmp_path, 2, 4)
    for cmd in (["train", "--out", str(tmp_path / "run")], ["eval", "--cv", "2"]):
        res = runner.invoke(app, [*cmd, "--catalog", str(db), *option])
        assert res.exit_code == 1, res.output
        assert res.output.count("error:") == 1 and option[0] in res.output
    assert not (tmp_path / "run" / "best.pt").exists()


def test_bad_counts_are_one_line(runner, tmp_path):
    db = scored_catalog(tmp_path, 2, 4)
    res = runner.invoke(app, ["rank", str(tmp_path / "ig"), "-r", "--top", "-2"])
    assert res.exit_code == 1 and "--top -2" in res.output
    res = runner.invoke(app, ["labels", "--catalog", str(db), "--min-support", "-5"])
    assert res.exit_code == 1 and "--min-support -5" in res.output


def test_resume_with_another_recipe_is_refused(runner, tmp_path):
    db = scored_catalog(tmp_path, 3, 4)
    base = ["train", "--catalog", str(db), "--out", str(tmp_path / "run"), "--image-size", "64"]
    res = runner.invoke(app, [*base, "--epochs", "1", "--val-fraction", "0.34"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--epochs", "2", "--resume", "--lr", "0.01"])
    assert res.exit_code == 1 and "--lr 0.001" in res.output
