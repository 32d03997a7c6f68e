"""File names as shown: bytes that are not UTF-8 never stop a table, a CSV or a sheet; control
characters and bidi overrides never reach the terminal raw; shortened names stay apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagion.cli import app
from imagion.names import shorten, shorten_apart, shown_name, visible
from tests.helpers import write_image

NATGEO = [f"natgeo_2022-1{m}-0{d}_1{d}-00-12_UTC.jpg" for m in range(3) for d in range(1, 6)]


def test_names_shortened_alike_are_told_apart():
    shown = shorten_apart(NATGEO, 24)
    assert len({shorten(n, 24) for n in NATGEO}) < len(NATGEO)  # the plain cut loses them
    assert len(set(shown)) == len(NATGEO)
    assert all(len(s) <= 24 for s in shown)
    assert shorten_apart(["a.jpg", "a.jpg", "b.jpg"], 24) == ["a.jpg", "a.jpg", "b.jpg"]


def test_what_never_reaches_the_terminal_raw():
    name = "caf\udce9 \u202egpj.exe\n\x1b[31mred\u2066.jpg"
    shown = shown_name(name)
    assert all(c not in shown for c in ("\udce9", "\u202e", "\n", "\x1b", "\u2066"))
    assert shown == "caf\\xe9 \\u202egpj.exe\\x0a\\x1b[31mred\\u2066.jpg"
    assert visible("two\nlines\u202e") == "two\nlines\\u202e"  # a message keeps its lines


@pytest.fixture
def odd_names(tmp_path) -> Path:
    folder = tmp_path / "odd"
    folder.mkdir()
    write_image(folder / "plain.jpg", 0.3, size=48)
    try:
        fd = os.open(os.fsencode(folder) + b"/caf\xe9.jpg", os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    os.close(fd)
    write_image(Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg")), 0.6, size=48, seed=1)
    write_image(folder / "evil\u202egpj.exe\nx.jpg", 0.8, size=48, seed=2)
    return folder


@pytest.mark.parametrize(
    "extra",
    [[], ["--csv"], ["--sheet", "s.html"], ["--sheet", "s.png"], ["--sheet", "s.jpg"]],
)
def test_names_that_are_not_utf8_or_hold_controls(runner, odd_names, tmp_path, extra):
    extra = [str(tmp_path / e) if e.startswith("s.") else e for e in extra]
    res = runner.invoke(app, ["rank", str(odd_names), "--no-suggest", *extra])
    assert res.exit_code == 0, res.output
    assert "caf\\xe9.jpg" in res.stdout
    if "--csv" not in extra:  # a CSV is data; the table is for a terminal
        assert "\u202e" not in res.stdout and "evil\\u202egpj." in res.stdout  # (maybe shortened)
    if extra[:1] == ["--sheet"]:
        sheet = Path(extra[1])
        assert sheet.stat().st_size > 0
        if sheet.suffix == ".html":
            assert "caf\\xe9.jpg" in sheet.read_text(encoding="utf-8")


def test_pick_sheet_with_a_name_that_is_not_utf8(runner, odd_names, tmp_path):
    for sheet in ("p.png", "p.html"):
        res = runner.invoke(app, ["pick", str(odd_names), "--sheet", str(tmp_path / sheet)])
        assert res.exit_code == 0, res.output
    assert "caf\\xe9.jpg" in (tmp_path / "p.html").read_text(encoding="utf-8")  # pick or runner-up
