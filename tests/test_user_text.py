"""User text is text: never Rich markup, never raw terminal codes."""

from __future__ import annotations

from imagion.cli import app
from tests.helpers import write_image


def test_user_text_is_not_markup_and_control_codes_are_shown(runner, tmp_path):
    import csv

    for name in ("a[x]b.jpg", "c.jpg", "d.jpg"):
        write_image(tmp_path / name, 0.4, seed=len(name))
    rows = [
        ["account", "image", "likes", "posted_at"],
        ["[/acct]", "a[x]b.jpg", "10", ""],
        ["[/acct]", "c.jpg", "20", "2017-01-01"],
        ["[/acct]", "d.jpg", "[/b]", "2017-01-02"],
    ]
    with open(tmp_path / "p.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    db = str(tmp_path / "c.db")
    res = runner.invoke(app, ["import", str(tmp_path / "p.csv"), "--catalog", db])
    assert res.exit_code == 0, res.output
    assert "[/b]" in res.output  # the refused value, shown as it is
    res = runner.invoke(app, ["posts", "--catalog", db])  # an undated post, an odd account
    assert res.exit_code == 0, res.output
    assert "[/acct]" in res.stdout and "a[x]b.jpg" in res.stdout
    from imagion.cli.console import visible

    assert visible("x\x1b[2Jy\x07") == "x\\x1b[2Jy\\x07"


def test_rank_shows_odd_file_names_as_they_are(runner, tmp_path, monkeypatch):
    write_image(tmp_path / "[bold red]b.jpg", 0.5)
    write_image(tmp_path / "a[x]b.jpg", 0.3)
    monkeypatch.chdir(tmp_path)  # short paths: the table does not fold them
    res = runner.invoke(app, ["rank", ".", "--no-suggest"])
    assert res.exit_code == 0, res.output
    assert "[bold red]b.jpg" in res.stdout and "a[x]b.jpg" in res.stdout


def test_notes_wrap_to_a_terminal_and_stay_one_line_in_a_log(monkeypatch):
    import io

    from rich.console import Console

    from imagion.cli import console

    long = "note: " + " ".join(["a weak hint on any one photo"] * 10)
    for terminal, lines in ((True, None), (False, 1)):
        buf = io.StringIO()
        fake = Console(file=buf, force_terminal=terminal, width=80, soft_wrap=True, markup=False)
        monkeypatch.setattr(console, "err", fake)
        console.note(long)
        got = [x for x in buf.getvalue().splitlines() if x.strip()]
        if lines is None:
            assert len(got) > 1 and max(len(x) for x in got) <= 80, got
        else:
            assert len(got) == 1
