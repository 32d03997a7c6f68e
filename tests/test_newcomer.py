"""A newcomer's first ten minutes: numbers stated at their strength."""

from __future__ import annotations

import itertools
import json
import re

import pandas as pd
import pytest

from imagion.cli import app
from imagion.cli.eval_command import accuracy_line
from imagion.evaluation.metrics import evaluate


def _report(likes: list[int], pred: list[float], accounts: int = 1):
    rows = [
        {"account": f"a{k}", "likes": n + k, "pred": p}
        for k in range(accounts)
        for n, p in zip(likes, pred, strict=True)
    ]
    return evaluate(pd.DataFrame(rows), reps=100)


def test_one_pair_is_too_few_to_judge_and_never_nan():
    rep = _report([10, 20], [0.1, 0.9])
    line = accuracy_line(rep, "chance 50.0%")
    assert line.startswith("too few pairs to judge (1 pair of 1 account")
    assert "100.0%" not in line and "nan" not in line
    assert rep.to_dict()["enough_pairs"] is False


def test_enough_pairs_get_a_percentage_and_in_sample_says_so_on_the_same_line():
    rep = _report(list(range(10, 100, 10)), [float(x) for x in range(9)], accounts=2)
    assert rep.pairs == 72
    assert accuracy_line(rep, "b").startswith("accuracy 100.0% [")
    rep.in_sample = True
    assert "IN-SAMPLE" in accuracy_line(rep, "b") and rep.to_dict()["in_sample"]


def test_more_pairs_asked_than_exist_is_said():
    rows = pd.DataFrame({"account": "a", "likes": [1, 2, 3, 4], "pred": [1.0, 2, 3, 4]})
    rep = evaluate(rows, pairs=1459, reps=50)
    assert rep.pairs == 6 and any("only 6 pairs exist" in n for n in rep.notes)


def test_eval_cli_spearman_is_never_nan(runner, trained):
    db, ckpt = trained
    res = runner.invoke(app, ["eval", "--catalog", str(db), "--model", str(ckpt)])
    assert res.exit_code == 0, res.output
    assert "nan" not in res.stdout.lower()
    assert "IN-SAMPLE" in res.stdout.splitlines()[-1]  # trained on these posts: said where read
    # the jargon said in plain words where it is printed (docs/evaluation.md says more)
    assert "0 unrelated, 1 the same" in res.stdout and "published elsewhere" in res.stdout
    words = " ".join(res.stdout.split())  # as read, whatever the wrapping
    assert "calibration on" in words and "how often it came true" in words


def test_compare_words_its_verdict_by_probability(runner, tmp_path):
    from imagion.inference.rank import Comparison, Ranked

    def ranked(name: str, raw: float) -> Ranked:
        return Ranked(path=tmp_path / name, score=5.0, raw=raw)

    for p, start in ((0.52, "a toss-up"), (0.6, "b.jpg is somewhat"), (0.8, "b.jpg is likely")):
        c = Comparison(ranked("a.jpg", 0.0), ranked("b.jpg", 1.0), 1 - p)
        assert c.verdict().startswith(start), c.verdict()
    c = Comparison(ranked("a.jpg", 0.0), ranked("b.jpg", 1.0), None)
    assert "unknown" in c.verdict() and "should" not in c.verdict()
    assert json.loads(json.dumps(c.to_dict()))["verdict"] == c.verdict()


def test_import_of_nothing_leaves_no_catalog(runner, tmp_path):
    db = tmp_path / "imagion.db"
    res = runner.invoke(app, ["import", str(tmp_path / "missing"), "--catalog", str(db)])
    assert res.exit_code == 1 and "no such file or folder" in res.output
    assert not db.exists() and list(tmp_path.iterdir()) == []
    res = runner.invoke(app, ["info", "--catalog", str(db)])
    assert res.exit_code == 1 and "no catalog here" in res.output


def test_rank_says_what_is_wrong_with_its_arguments(runner, tmp_path):
    res = runner.invoke(app, ["rank", str(tmp_path / "does-not-exist.jpg")])
    assert res.exit_code == 1 and "no such file or folder" in res.output
    assert "add -r" not in res.output
    (tmp_path / "notimg.jpg").write_text("hello")
    res = runner.invoke(app, ["rank", str(tmp_path / "notimg.jpg")])
    assert res.exit_code == 1 and "no image could be scored" in res.output
    assert "┏" not in res.output  # no empty table


def test_cv_from_an_init_that_saw_these_accounts_is_flagged(runner, trained, tmp_path):
    db, ckpt = trained
    res = runner.invoke(
        app,
        ["eval", "--catalog", str(db), "--cv", "2", "--init", str(ckpt), "--epochs", "1",
         "--val-fraction", "0", "--out", str(tmp_path / "cv")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "--init checkpoint trained on" in res.output
    assert "IN-SAMPLE" in res.stdout.splitlines()[-1]


def test_crops_say_what_they_wrote_and_only_for_the_shown_photos(runner, tmp_path, monkeypatch):
    from PIL import Image

    from imagion.inference import rank as rank_mod
    from imagion.inference.crops import CropAdvice
    from tests.helpers import write_image

    for k in range(3):
        write_image(tmp_path / "in" / f"p{k}.jpg", 0.2 + 0.3 * k, size=40, seed=k)
    out = tmp_path / "crops"
    res = runner.invoke(app, ["rank", str(tmp_path / "in"), "--crops", str(out), "--no-suggest"])
    assert res.exit_code == 0, res.output
    if not any(out.glob("*")):
        assert "nothing written" in res.stderr

    def always(engine, path):
        advice = CropAdvice("1:1", "centre", (0.0, 0.0, 1.0, 1.0), 6.0, 5.0, 0.7)
        return advice, Image.new("RGB", (8, 8))

    monkeypatch.setattr(rank_mod, "best_crop", always)
    out2 = tmp_path / "crops2"
    res = runner.invoke(
        app, ["rank", str(tmp_path / "in"), "--crops", str(out2), "--top", "1", "--no-suggest"]
    )
    assert res.exit_code == 0, res.output
    assert len(list(out2.iterdir())) == 1 and "wrote 1 crop(s)" in res.stderr


def test_rank_table_fits_80_columns_and_says_a_common_suggestion_once(runner, monkeypatch):
    from tests.helpers import ROOT

    monkeypatch.chdir(ROOT)
    res = runner.invoke(app, ["rank", str(ROOT / "data" / "samples")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("hubble-deep-field.jpg" in line for line in lines)  # whole names, not folded
    assert sum("every photo here" in line for line in lines) <= 1


def test_usage_errors_are_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    for args, needle in (
        (["rnak"], "Did you mean 'rank'?"),
        (["eval", "--pairs", "abc"], "--pairs"),
        (["rank", "--nope"], "No such option: --nope"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "imagion", *args],
            cwd=tmp_path,
            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_posts_table_fits_80_columns_one_line_per_post(runner, tmp_path):
    from tests.helpers import scored_catalog

    db = scored_catalog(tmp_path, 2, 3)
    res = runner.invoke(app, ["posts", "--catalog", str(db)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 6  # one line per post: nothing folded
    assert all("2020-09-13" in r for r in rows)  # the whole time, on that line


def _help(command: object, name: str, columns: int = 80) -> str:
    """`imagion NAME --help` as a terminal of `columns` shows it (the command tree the console
    script runs, help layout included)."""
    from typer.testing import CliRunner

    with CliRunner().isolation(env={"COLUMNS": str(columns)}) as (out, *_):
        command.main([name, "--help"], prog_name="imagion", standalone_mode=False)  # type: ignore[attr-defined]
        return out.getvalue().decode()


def _help_problems(name: str, text: str) -> list[str]:
    """What a newcomer stumbles on in one command's help."""
    from imagion.cli.help_layout import RECIPE_PANEL

    problems = []
    lines = text.splitlines()
    if any(len(line) > 80 for line in lines):
        problems.append("wider than 80 columns")
    for bad in re.findall(r"\{\w+\}|<bool>|<str>|list\[|range>", text):
        problems.append(f"placeholder or Python type {bad!r}")
    for pair in re.findall(r"--[\w-]+,--[\w-]+", text):
        problems.append(f"option pair {pair!r}")
    description = [line.strip() for line in text.split("╭", 1)[0].splitlines()]
    for line, after in itertools.pairwise(description):
        if line and len(line) < 60 and after[:1].islower():  # a hard break mid-sentence
            problems.append(f"broken line {line!r} / {after!r}")
    panels = re.findall(r"^╭─ (.+?) ─", text, flags=re.M)
    if RECIPE_PANEL in panels and name not in ("train", "eval"):
        problems.append(f"a {RECIPE_PANEL!r} panel")
    return [f"imagion {name} --help: {p}" for p in problems]


def test_every_commands_help_reads_well_at_80_columns():
    """No `{paths}...` or `{a} {b}`, no `--account,--accounts`, no Python types, no sentence
    broken across lines, no option in a panel of another command (rank's --batch-size is no
    training recipe); eval and train keep their panels."""
    from imagion.cli import build_command

    command = build_command()
    names = sorted(command.commands)  # type: ignore[attr-defined]
    assert {"import", "rank", "compare", "train", "eval"} <= set(names)
    problems = []
    texts = {}
    for name in names:
        texts[name] = _help(command, name)
        problems += _help_problems(name, texts[name])
    assert not problems, "\n".join(problems)
    assert "Usage: imagion rank [OPTIONS] [PATH...]" in texts["rank"]  # or --from-table
    assert "Usage: imagion compare [OPTIONS] A B" in texts["compare"]
    assert "--account " in texts["train"] and "Training recipe" in texts["train"]
    panels = [line for line in texts["eval"].splitlines() if line.startswith("╭─")]
    assert len(panels) >= 4 and any("Cross-validation" in p for p in panels)


def test_the_help_checker_sees_each_stumble():
    broken = (
        " Usage: imagion import [OPTIONS] {sources}...\n Instagram's own: the export and the\n"
        " professional dashboard's CSV.\n╭─ Run ─\n│ --account,--accounts  <str>\n"
        "╭─ Training recipe (train; eval --cv) ─\n│ --batch-size <int range> \n"
    )
    found = " ".join(_help_problems("rank", broken))
    for needle in ("{sources}", "'<str>'", "range>", "--account,--accounts", "broken line",
                   "Training recipe"):  # fmt: skip
        assert needle in found, needle


def test_aliases_still_parse_though_help_lists_one_name(runner, tmp_path):
    res = runner.invoke(app, ["eval", "--catalog", str(tmp_path / "none.db"), "--accounts", "x"])
    assert "No such option" not in res.output and "no catalog here" in res.output


def test_an_earlier_run_is_named_with_the_flag_that_keeps_both(tmp_path, caplog):
    import torch

    from imagion.cli.console import for_cli
    from imagion.training.loop import _check
    from imagion.training.options import TrainOptions

    torch.save({"format": "imagion-checkpoint"}, tmp_path / "best.pt")  # an earlier run's
    with caplog.at_level("INFO", logger="imagion"):
        _check(TrainOptions(out=tmp_path), tmp_path, 0)
    line = for_cli(caplog.records[-1].getMessage())
    assert line.endswith("this run replaces it (give another --out to keep both)"), line


@pytest.mark.parametrize("score,shown", [(5.54996, "5.6"), (5.5449, "5.5"), (5.5503, "5.6")])
def test_a_photo_has_one_score_in_the_table_the_json_the_sheet_and_the_page(score, shown):
    from pathlib import Path

    from imagion.cli.rank_commands import _rank_table
    from imagion.inference.rank import Ranked
    from imagion.inference.sheet import _caption
    from imagion.serve.page import render_results
    from imagion.serve.scorer import Scored

    item = Ranked(path=Path("a.jpg"), score=score, raw=0.0)
    row = item.to_dict(rank=1)
    table = _rank_table([row], "model")
    assert list(table.columns[2].cells) == [shown]
    assert abs(row["score"] - score) <= 5e-5  # JSON keeps 4 decimals
    assert _caption(0, item) == f"#1 · {shown}"
    html = render_results(Scored(items=[item], thumbs={}, index={0: 0}))
    assert f'<div class="score">{shown}</div>' in html


def test_labels_with_few_posts_say_so_and_say_what_they_wrote(runner, tmp_path):
    from helpers import scored_catalog

    db = scored_catalog(tmp_path, 2, 4)
    stats = tmp_path / "s.json"
    res = runner.invoke(
        app,
        ["labels", "--catalog", str(db), "--provider", "hashtags", "--save-stats", str(stats)],
    )
    assert res.exit_code == 0, res.output
    assert "┃ score" not in res.stdout and "no labels to tabulate" in res.stdout  # no empty table
    assert f"wrote {stats}" in res.stderr and stats.is_file()


def test_importing_an_empty_folder_says_one_thing(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    db = tmp_path / "x.db"
    res = runner.invoke(app, ["import", str(tmp_path / "empty"), "--catalog", str(db)])
    assert res.exit_code == 1 and not db.exists()
    assert res.stdout.strip() == f"imported nothing (1 problem); no catalog was created at {db}."
    assert "no posts found" in res.stderr and "holds 0" not in res.output
    assert res.output.count("no catalog was created") == 1


def test_no_suggestion_says_what_to_do_only_when_it_helps():
    from imagion.cli.console import for_cli
    from imagion.labels.suggestions import LabelStats, _no_evidence

    own = _no_evidence(LabelStats("local", 40, 5.0))
    assert "local statistics (40 posts)" in own and "imagion labels" not in own  # already yours
    bundled = for_cli(_no_evidence(LabelStats("local", 10743, 5.0, bundled=True)))
    assert "--save-stats" in bundled and "as --stats" in bundled
    assert "on your own catalog" not in bundled


def test_posts_ids_are_shortened_in_the_middle_so_posts_stay_apart(runner, tmp_path):
    from tests.helpers import make_instaloader

    make_instaloader(tmp_path / "ig", {"a_long_account_name": [5, 9, 7]})
    db = tmp_path / "c.db"
    assert runner.invoke(app, ["import", str(tmp_path / "ig"), "--catalog", str(db)]).exit_code == 0
    res = runner.invoke(app, ["posts", "--catalog", str(db)], env={"COLUMNS": "80"})
    ids = [line.split("│")[2].strip() for line in res.stdout.splitlines() if line.startswith("│")]
    assert len(ids) == 3 and len(set(ids)) == 3, ids  # the ends that differ are kept


def _choices(param: object) -> list[str]:
    """The values an option takes when they are a fixed list (an enum, or a list of one)."""
    import enum
    import typing

    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if kind is None:  # an older Typer: click's Choice
        return list(getattr(getattr(param, "type", None), "choices", ()))
    for k in (
        kind,
        *typing.get_args(kind),
        *(a for t in typing.get_args(kind) for a in typing.get_args(t)),
    ):
        if isinstance(k, type) and issubclass(k, enum.Enum):
            return [str(m.value) for m in k]
    return []


def test_help_never_breaks_a_choice_and_lists_what_a_newcomer_wants_first(runner):
    """At 80 columns each choice of each option is whole on one line (`impres`/`sions>` was
    not), and `imagion -h` lists rank, compare and pick first."""
    from imagion.cli import build_command

    command = build_command()
    broken, checked = [], 0
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        lines = _help(command, name).splitlines()
        for param in sub.params:
            for choice in _choices(param):
                checked += 1
                word = re.compile(rf"(?<![\w-]){re.escape(str(choice))}(?![\w-])")
                if not any(word.search(line) for line in lines):
                    broken.append(f"{name} --{param.name}: {choice}")
    assert checked > 20 and not broken, broken
    res = runner.invoke(app, ["-h"], env={"COLUMNS": "80"})
    names = re.findall(r"^│ (\w+) ", res.stdout, flags=re.M)
    assert names[:3] == ["rank", "compare", "pick"], names


LONG = "natgeo_2022-11-30_17-45-12_UTC_{}_holiday_photo.jpg"


def _long_names(tmp_path):
    import shutil

    from tests.helpers import ROOT

    folder = tmp_path / "trip"
    folder.mkdir()
    for p in sorted((ROOT / "data" / "samples").glob("*.jpg")):
        shutil.copy(p, folder / LONG.format(p.stem))
    shutil.copy(folder / LONG.format("coffee"), folder / LONG.format("coffee_copy"))
    return folder


def test_groups_and_compare_fit_80_columns_without_breaking_a_name(runner, tmp_path):
    folder = _long_names(tmp_path)
    res = runner.invoke(app, ["rank", str(folder), "--groups"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    files = [line.split("│")[3].strip() for line in lines if line.startswith("│")]
    named = [f for f in files if f]
    assert len(named) == 6 and all(f.endswith(".jpg") for f in named), files  # never folded
    a, b = folder / LONG.format("coffee"), folder / LONG.format("rocket")
    res = runner.invoke(app, ["compare", str(a), str(b)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(map(len, res.stdout.splitlines())) <= 80, res.stdout


def test_eval_fits_80_columns(runner, tmp_path):
    from tests.helpers import scored_catalog

    db = scored_catalog(tmp_path, 2, 6)
    args = ["eval", "--catalog", str(db), "--device", "cpu", "--show-pairs", "2"]
    res = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert any(line.startswith("calibration") for line in lines), res.stdout
    assert max(map(len, lines)) <= 80, [line for line in lines if len(line) > 80]
