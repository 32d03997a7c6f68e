"""JSON that costs more than it says (issue #35): a 5,000-digit integer in an export's post list
is that file's problem, not a crashed import with an empty catalog; `rank --stats` refuses a file
nested 100,000 levels deep, or larger than any statistics, in one `error:` line."""

from __future__ import annotations

import importlib.util
import sys

from helpers import ROOT

from imagion.catalog.store import Catalog
from imagion.cli import app
from imagion.labels.suggestions import MAX_STATS_BYTES
from tests.helpers import write_image

spec = importlib.util.spec_from_file_location("example_export", ROOT / "scripts/example_export.py")
ex = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["example_export"] = ex
spec.loader.exec_module(ex)  # type: ignore[union-attr]


def test_a_huge_integer_post_list_costs_that_file_only(runner, tmp_path):
    posts = ex.example_posts(6)
    files = ex.export_files(posts)
    name = next(k for k in files if k.endswith("posts_1.json"))
    files[name.replace("posts_1", "posts_2")] = b"9" * 5000
    zip_path = ex.write_export_zip(tmp_path / "e.zip", files)
    db = tmp_path / "me.db"
    res = runner.invoke(app, ["import", str(zip_path), "--catalog", str(db)])
    assert res.exit_code == 0, res.output
    assert "posts_2.json" in res.output and "not valid JSON" in res.output
    with Catalog(db) as cat:
        assert len(cat.frame("*")) == sum(not p.video for p in posts) + sum(p.video for p in posts)


def _rank_with_stats(runner, tmp_path, stats_bytes: bytes):
    stats = tmp_path / "stats.json"
    stats.write_bytes(stats_bytes)
    image = write_image(tmp_path / "a.jpg", 0.5)
    return runner.invoke(app, ["rank", str(image), "--stats", str(stats)])


def test_stats_nested_100000_levels_is_one_error_line(runner, tmp_path):
    res = _rank_with_stats(runner, tmp_path, b"[" * 100_000 + b"]" * 100_000)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("error:") and "nested too deeply" in res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output


def test_stats_larger_than_any_statistics_is_refused_unread(runner, tmp_path):
    res = _rank_with_stats(runner, tmp_path, b" " * (MAX_STATS_BYTES + 1))
    assert res.exit_code == 1 and res.output.startswith("error:")
    assert "larger than" in res.output


def test_stats_with_a_huge_integer_is_one_error_line(runner, tmp_path):
    res = _rank_with_stats(runner, tmp_path, b'{"posts": ' + b"7" * 5000 + b"}")
    assert res.exit_code == 1 and res.output.startswith("error:"), res.output


def test_an_export_file_is_capped_by_what_parsing_it_costs(runner, tmp_path, monkeypatch):
    """40 MiB of `[[],[],…]` parses to ~850 MB: refused by its estimated cost, unparsed, while a
    real post list of the same bytes passes; the other files of the export are read."""
    from imagion.catalog import export_tree

    posts = ex.example_posts(6)
    files = ex.export_files(posts)
    name = next(k for k in files if k.endswith("posts_1.json"))
    hostile = b"[" + b",".join([b"[]"] * 50_000) + b"]"
    files[name.replace("posts_1", "posts_2")] = hostile
    per_byte = export_tree.parse_cost(hostile) / len(hostile)
    assert per_byte > 2 * export_tree.parse_cost(files[name]) / len(files[name])
    monkeypatch.setattr(export_tree, "MAX_PARSE_BYTES", export_tree.parse_cost(hostile) - 1)
    db = tmp_path / "me.db"
    res = runner.invoke(
        app,
        [
            "import",
            str(ex.write_export_zip(tmp_path / "e.zip", files)),
            "--catalog",
            str(db),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "posts_2.json" in res.output and "to parse" in res.output
    with Catalog(db) as cat:
        assert len(cat.frame("*")) == len(posts)


def test_an_export_gives_at_most_max_posts(runner, tmp_path, monkeypatch):
    from imagion.catalog import instagram_export

    posts = ex.example_posts(12)
    files = ex.export_files(posts, insights=False)
    monkeypatch.setattr(instagram_export, "MAX_EXPORT_POSTS", 4)
    db = tmp_path / "me.db"
    res = runner.invoke(
        app,
        [
            "import",
            str(ex.write_export_zip(tmp_path / "e.zip", files)),
            "--catalog",
            str(db),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "and the rest skipped" in res.output
    with Catalog(db) as cat:
        assert len(cat.frame("*")) <= 4 + sum(p.video for p in posts)
