"""Instagram exports that are damaged, hostile or moved: bounded JSON, bounded problem lines,
duplicate members said, decimal insights refused, a content CSV imported after its export
joined (not duplicated), a moved zip named once."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile

from helpers import ROOT

from imagion.catalog.store import Catalog
from imagion.cli import app

spec = importlib.util.spec_from_file_location("example_export", ROOT / "scripts/example_export.py")
ex = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["example_export"] = ex
spec.loader.exec_module(ex)  # type: ignore[union-attr]

POSTS = ex.example_posts(12)


def _import(runner, db, *sources, args=()):
    return runner.invoke(app, ["import", *map(str, sources), "--catalog", str(db), *args])


def _count(db) -> int:
    with Catalog(db) as cat:
        return len(cat.frame("*"))


def test_content_csv_after_its_export_updates_instead_of_duplicating(runner, tmp_path):
    zip_path = ex.write_export_zip(tmp_path / "e.zip", ex.export_files(POSTS))
    csv_path = tmp_path / "content.csv"
    csv_path.write_text(ex.content_csv(POSTS), encoding="utf-8")
    db = tmp_path / "me.db"
    res = _import(runner, db, zip_path, csv_path)
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["score", "--catalog", str(db)]).exit_code == 0
    res = _import(runner, db, csv_path)  # the CSV again, alone (a newer download of it)
    assert res.exit_code == 0, res.output
    assert _count(db) == len(POSTS)  # not 2 × len(POSTS)
    assert f"{len(POSTS)} rows matched" in res.stdout


def test_csv_of_an_export_imported_without_a_csv_joins_the_catalogs_posts(runner, tmp_path):
    zip_path = ex.write_export_zip(tmp_path / "e.zip", ex.export_files(POSTS, insights=False))
    db = tmp_path / "me.db"
    assert _import(runner, db, zip_path).exit_code == 0
    csv_path = tmp_path / "content.csv"
    csv_path.write_text(ex.content_csv(POSTS), encoding="utf-8")
    res = _import(runner, db, csv_path)
    assert res.exit_code == 0, res.output
    with Catalog(db) as cat:
        df = cat.frame("*")
    assert len(df) == len(POSTS)
    photos = df[df.is_video == 0]
    assert photos.image.notna().all() and photos.likes.notna().all()


def test_export_json_is_capped_in_all_not_only_per_file(runner, tmp_path, monkeypatch):
    from imagion.catalog import export_tree

    monkeypatch.setattr(export_tree, "MAX_EXPORT_JSON_BYTES", 4000)
    monkeypatch.setattr(export_tree, "MAX_EXPORT_TOTAL_JSON_BYTES", 6000)
    files = ex.export_files(POSTS, insights=False)
    for n in range(2, 6):  # four more posts_N.json, each under the per-file cap
        filler = [{"media": [{"uri": f"media/x{n}-{k}.jpg"}]} for k in range(60)]
        files[f"your_instagram_activity/content/posts_{n}.json"] = json.dumps(filler).encode()
        assert 2000 < len(files[f"your_instagram_activity/content/posts_{n}.json"]) < 4000
    zip_path = ex.write_export_zip(tmp_path / "e.zip", files)
    res = _import(runner, tmp_path / "me.db", zip_path, args=["--json"])
    assert "JSON files skipped" in res.stderr and "already came to" in res.stderr, res.stderr
    data = json.loads(res.stdout)
    # the missing images of the filler files are counted, not each listed
    assert len(data["problems"]) <= 51 and data["problem_count"] >= len(data["problems"])


def test_problem_lines_are_capped(runner, tmp_path):
    files = ex.export_files(POSTS, insights=False)
    many = [
        {"media": [{"uri": f"media/posts/gone{k}.jpg", "creation_timestamp": 1_700_000_000 + k}]}
        for k in range(400)
    ]
    files["your_instagram_activity/content/posts_2.json"] = json.dumps(many).encode()
    zip_path = ex.write_export_zip(tmp_path / "e.zip", files)
    res = _import(runner, tmp_path / "me.db", zip_path)
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert 400 > len(warnings) <= 52, len(warnings)
    assert "more problems like these" in res.stderr


def test_duplicate_zip_members_are_said(runner, tmp_path):
    zip_path = ex.write_export_zip(tmp_path / "e.zip", ex.export_files(POSTS))
    with zipfile.ZipFile(zip_path, "a") as zf, __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # zipfile warns of the duplicate name
        zf.writestr("your_instagram_activity/content/posts_1.json", b"[]")
    res = _import(runner, tmp_path / "me.db", zip_path)
    assert "appear more than once in the zip" in res.stderr, res.stderr


def test_decimal_insight_is_refused_not_multiplied():
    from imagion.catalog.instagram_export import set_metric
    from imagion.catalog.store import Post

    for text in ("1.5", "2,75", "0.5"):
        post = Post("a", "1", "s", "x")
        problems: list[str] = []
        set_metric(post, "reach", text, "here", problems)
        assert post.reach is None and problems and "number" in problems[0], problems
    post = Post("a", "1", "s", "x")
    set_metric(post, "reach", "1.500", "here", [])
    assert post.reach == 1500  # German thousands


def test_moved_zip_is_named_once(runner, tmp_path, monkeypatch):
    # a cache of its own: the example's photos are the same in other tests, and features
    # cached there would spare this run the read that finds the zip gone
    monkeypatch.setenv("IMAGION_CACHE", str(tmp_path / "cache"))
    zip_path = ex.write_export_zip(tmp_path / "e.zip", ex.export_files(POSTS))
    csv_path = tmp_path / "content.csv"
    csv_path.write_text(ex.content_csv(POSTS), encoding="utf-8")
    db = tmp_path / "me.db"
    assert _import(runner, db, zip_path, csv_path).exit_code == 0
    assert runner.invoke(app, ["score", "--catalog", str(db)]).exit_code == 0
    zip_path.rename(tmp_path / "moved.zip")
    res = runner.invoke(app, ["featurize", "--catalog", str(db), "--device", "cpu"])
    assert res.exit_code == 1
    lines = [line for line in res.stderr.splitlines() if "not there any more" in line]
    assert len(lines) == 1 and "e.zip" in lines[0], res.stderr
    res = runner.invoke(app, ["eval", "--catalog", str(db), "--device", "cpu"])
    assert res.exit_code == 1 and "not there any more" in res.stderr, res.stderr
    assert "need ≥ 2 posts" not in res.stderr
