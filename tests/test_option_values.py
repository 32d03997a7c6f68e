"""Every bad option value is one `error:` line naming the flag, exit status 1: no traceback,
no value silently accepted."""

from __future__ import annotations

import pytest

from imagion.cli import app
from tests.helpers import scored_catalog, write_image

HUGE = "99999999999999999999"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return scored_catalog(tmp_path_factory.mktemp("opts"), 3, 6)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["eval", "--seed", "-1"], "--seed"),
        (["eval", "--seed", HUGE], "--seed"),
        (["eval", "--show-pairs", "-1"], "--show-pairs"),
        (["eval", "--min-gap", "1e300"], "--min-gap"),
        (["eval", "--cv", "time", "--time-blocks", HUGE], "--time-blocks"),
        (["score", "--window", HUGE], "--window"),
        (["posts", "--limit", "-1"], "--limit"),
        (["labels", "--concurrency", "0"], "--concurrency"),
        (["labels", "--concurrency", "-5"], "--concurrency"),
    ],
)
def test_bad_numbers_are_one_line(db, runner, args, flag):
    res = runner.invoke(app, [*args, "--catalog", str(db)])
    assert res.exit_code in (1, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    text = " ".join(lines)
    assert flag in text and "Traceback" not in text, res.stderr


@pytest.mark.parametrize("size", ["0", "-2"])
def test_rank_batch_size_must_be_positive(tmp_path, runner, size):
    write_image(tmp_path / "a.jpg", 0.5)
    res = runner.invoke(app, ["rank", str(tmp_path / "a.jpg"), "--batch-size", size])
    assert res.exit_code in (1, 2) and "--batch-size" in res.stderr, res.output
