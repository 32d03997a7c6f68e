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


def _verb_reason(call) -> str:
    """The verb's reason, its parameters written as the command line's flags."""
    from imagion.cli.app import flag_of
    from imagion.errors import OptionError, with_names

    with pytest.raises(OptionError) as err:
        call()
    return with_names(err.value.reason, flag_of)


@pytest.mark.parametrize(
    ("args", "flag", "call"),
    [
        (["rank", "--batch-size", "0"], "--batch-size", lambda p: _rank(p, batch_size=0)),
        (["pick", "--batch-size", "0"], "--batch-size", lambda p: _rank(p, batch_size=0)),
        (["rank", "--groups", "--batch-size", "0"], "--batch-size",
         lambda p: _rank(p, batch_size=0)),
        (["rank", "--top", "0"], "--top", lambda p: _rank(p, top=0)),
        (["rank", "--groups", "--top", "0"], "--top", lambda p: _rank(p, top=0)),
    ],
)  # fmt: skip
def test_the_cli_answers_as_the_verb_does(runner, tmp_path, args, flag, call):
    """One check, at the verb: the command line prints the verb's OptionError, not its own."""
    photo = write_image(tmp_path / "a.jpg", 0.5)
    res = runner.invoke(app, [args[0], str(photo), *args[1:]])
    assert res.exit_code == 1, res.output
    assert res.stderr.strip() == f"error: {flag} 0: {_verb_reason(lambda: call(photo))}"


def _rank(photo, **kwargs):
    import imagion

    return imagion.rank([photo], **kwargs)


def test_eval_cv_answers_as_cross_validate_does(db, runner):
    import imagion

    reason = _verb_reason(lambda: imagion.cross_validate(db, folds="four"))
    res = runner.invoke(app, ["eval", "--catalog", str(db), "--cv", "four"])
    assert res.exit_code == 1 and res.stderr.strip() == f"error: --cv four: {reason}"


@pytest.mark.parametrize(
    ("args", "flag", "mode"),
    [
        (["--engine", "ray", "--copy-to", "{d}"], "--copy-to", "--engine ray"),
        (["--engine", "ray", "--similarity", "0.9"], "--similarity", "--engine ray"),
        (["--engine", "ray", "--groups"], "--groups", "--engine ray"),
        (["--groups", "--crops", "{d}"], "--crops", "--groups"),
        (["--groups", "--out", "t.parquet"], "--out", "--groups"),
        (["--out", "t.parquet"], "--out", "rank"),
        (["--similarity", "0.9"], "--similarity", "rank"),
        (["--features"], "--features", "rank"),
    ],
)
def test_each_rank_mode_refuses_the_others_options(runner, tmp_path, args, flag, mode):
    """rank's modes (plain, --groups, --engine ray) each own their options, from one table;
    a flag of another mode is one line naming it and the mode it goes with, before any work."""
    photo = write_image(tmp_path / "a.jpg", 0.5)
    (tmp_path / "out").mkdir()
    argv = [a.replace("{d}", str(tmp_path / "out")) for a in args]
    res = runner.invoke(app, ["rank", str(photo), *argv])
    assert res.exit_code == 1, res.output
    line = res.stderr.strip()
    assert line.startswith(f"error: {flag}") and f"not with {mode}" in line, line
