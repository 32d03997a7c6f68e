"""Every CSV imagion writes is safe to open in a spreadsheet: text that a spreadsheet would run
as a formula (=, +, -, @, tab, CR first) is written with a leading apostrophe; numbers stay
numbers. `posts --json/--csv` carry every field the catalog stores."""

from __future__ import annotations

import csv
import io
import json

from imagion.cli import app
from imagion.spreadsheet import safe_cell
from tests.helpers import make_instaloader, write_image

FORMULAS = ['=HYPERLINK("http://x")', "+cmd", "-2+3", "@SUM(A1)", "=cmd|'/C calc'!A0"]


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def _formula_like(cell: str) -> bool:
    """Text a spreadsheet would run (a number such as -0.53 is a number, not a formula)."""
    try:
        float(cell)
        return False
    except ValueError:
        return cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_safe_cell_escapes_text_not_numbers():
    assert [safe_cell(f) for f in FORMULAS] == ["'" + f for f in FORMULAS]
    assert safe_cell(-0.53) == -0.53 and safe_cell("natgeo") == "natgeo"


def test_rank_csv_escapes_file_names(tmp_path, runner):
    for k, name in enumerate(["=HYPERLINK(1)", "+cmd", "@x", "ok"]):
        write_image(tmp_path / "photos" / f"{name}.jpg", 0.2 + 0.2 * k, seed=k)
    res = runner.invoke(app, ["rank", str(tmp_path / "photos"), "--csv"])
    assert res.exit_code == 0, res.output
    cells = _cells(res.stdout)
    assert not [c for c in cells if _formula_like(c)], cells
    assert any(c.endswith("=HYPERLINK(1).jpg") for c in cells)  # the path, written as text


def _hostile_catalog(tmp_path, runner):
    make_instaloader(tmp_path / "ig", {"=cmd": [10, 50, 30, 20], "+acct": [5, 9, 7, 1]})
    db = tmp_path / "c.db"
    for args in (["import", str(tmp_path / "ig")], ["score"]):
        res = runner.invoke(app, [*args, "--catalog", str(db)])
        assert res.exit_code == 0, res.output
    return db


def test_posts_csv_and_eval_pairs_escape_accounts_and_ids(tmp_path, runner):
    db = _hostile_catalog(tmp_path, runner)
    res = runner.invoke(app, ["posts", "--catalog", str(db), "--csv"])
    assert res.exit_code == 0, res.output
    cells = _cells(res.stdout)
    assert "'=cmd" in cells and not [c for c in cells if _formula_like(c)], cells
    pairs = tmp_path / "pairs.csv"
    res = runner.invoke(
        app, ["eval", "--catalog", str(db), "--device", "cpu", "--pairs-out", str(pairs)]
    )
    assert res.exit_code == 0, res.output
    cells = _cells(pairs.read_text())
    assert "'=cmd" in cells and not [c for c in cells if _formula_like(c)], cells


def test_posts_json_and_csv_carry_every_stored_field(tmp_path, runner):
    from imagion.catalog.store import POST_COLUMNS

    db = _hostile_catalog(tmp_path, runner)
    res = runner.invoke(app, ["posts", "--catalog", str(db), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    wanted = {"caption", "reach", "impressions", "saves", "shares", "follows", "profile_visits"}
    assert wanted <= set(rows[0]) and set(POST_COLUMNS) <= set(rows[0])
    assert rows[0]["caption"].startswith("post ")
    res = runner.invoke(app, ["posts", "--catalog", str(db), "--csv"])
    header = next(csv.reader(io.StringIO(res.stdout)))
    assert set(POST_COLUMNS) <= set(header)


def test_posts_csv_into_a_closed_pipe_is_quiet(tmp_path, runner):
    import subprocess
    import sys

    from tests.helpers import ROOT

    make_instaloader(tmp_path / "ig", {f"a{k}": list(range(5, 400, 7)) for k in range(30)})
    db = tmp_path / "c.db"
    res = runner.invoke(app, ["import", str(tmp_path / "ig"), "--catalog", str(db)])
    assert res.exit_code == 0, res.output
    cmd = f"{sys.executable} -m imagion posts --catalog {db} --csv | head -n 1"
    done = subprocess.run(
        ["bash", "-c", cmd],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.stdout.startswith("account,post_id")
    assert "error" not in done.stderr and "Broken pipe" not in done.stderr, done.stderr


def test_rank_csv_carries_the_json_rows_flat_fields(runner):
    """`rank --csv` has every flat field of `rank --json` (the 80% range, p_beats_next, the labels
    seen "; "-joined), row for row."""
    from imagion.inference.rank import RANK_CSV
    from tests.helpers import ROOT

    samples = str(ROOT / "data" / "samples")
    res = runner.invoke(app, ["rank", samples, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    res = runner.invoke(app, ["rank", samples, "--csv"])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(table[0]) == RANK_CSV
    assert {"score_low", "score_high", "p_beats_next", "labels"} <= set(RANK_CSV)
    for row, want in zip(table, rows, strict=True):
        assert row["path"] == want["path"] and float(row["score_low"]) == want["score_low"]
        assert row["p_beats_next"] == str(want.get("p_beats_next", ""))
        assert row["labels"].split("; ") == (want["labels"] or [""])


def test_every_json_output_ends_with_a_newline(runner):
    from tests.helpers import ROOT

    samples = ROOT / "data" / "samples"
    a, b = sorted(samples.glob("*.jpg"))[:2]
    for args in (
        ["compare", str(a), str(b), "--json"],
        ["rank", str(samples), "--json"],
        ["pick", str(samples), "-n", "2", "--json"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert res.stdout.endswith("}\n") or res.stdout.endswith("]\n"), (args, res.stdout[-20:])
        json.loads(res.stdout)
