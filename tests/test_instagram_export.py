"""Instagram's own exports: "Download your information" (folder or .zip, both layouts) and the
professional dashboard's content CSV (English and German), joined into one catalog."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
import zipfile

import pandas as pd
import pytest
from helpers import ROOT, scored_catalog

from imagion.catalog.store import Catalog
from imagion.cli import app

spec = importlib.util.spec_from_file_location("example_export", ROOT / "scripts/example_export.py")
ex = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["example_export"] = ex
spec.loader.exec_module(ex)  # type: ignore[union-attr]

POSTS = ex.example_posts(18)
PHOTOS = [p for p in POSTS if not p.video]


def _import(runner, tmp_path, *sources, args=()):
    db = tmp_path / "me.db"
    res = runner.invoke(app, ["import", *map(str, sources), "--catalog", str(db), *args])
    return res, db


def _rows(db):
    with Catalog(db) as cat:
        return cat.frame("*")


def test_zip_and_content_csv_make_one_catalog_with_images_likes_and_reach(runner, tmp_path):
    zip_path = ex.write_export_zip(
        tmp_path / "instagram-lena.travels-2026-11-30.zip", ex.export_files(POSTS)
    )
    csv_path = tmp_path / "content.csv"
    csv_path.write_text(ex.content_csv(POSTS), encoding="utf-8")
    res, db = _import(runner, tmp_path, zip_path, csv_path)
    assert res.exit_code == 0, res.output
    assert f"{len(POSTS)} rows matched" in res.stdout
    assert "0 images without metrics" in res.stdout and "inferred" in res.stdout
    df = _rows(db)
    assert len(df) == len(POSTS) and set(df.account) == {"lena.travels"}
    photos = df[df.is_video == 0]
    assert len(photos) == len(PHOTOS)
    assert photos.image.notna().all() and photos.likes.notna().all() and photos.reach.notna().all()
    assert all(".zip!/media/posts/" in i for i in photos.image)  # read in place, not unpacked
    assert not any(p.is_dir() for p in tmp_path.iterdir())
    by_time = {p.ts: p for p in POSTS}
    for row in df.itertuples():
        truth = by_time[row.posted_at]
        assert (row.likes, row.reach, row.saves) == (truth.likes, truth.reach, truth.saves)
    assert df.is_carousel.sum() == sum(p.slides > 1 for p in POSTS)
    assert "☀️🌊" in df.caption.iloc[0]  # mojibake repaired
    res = runner.invoke(app, ["score", "--metric", "engagement", "--catalog", str(db)])
    assert res.exit_code == 0 and "metric engagement" in res.stdout
    with Catalog(db) as cat:
        scored = cat.frame("*").dropna(subset=["score"])
    rate = scored.likes / scored.reach
    assert scored.sort_values("score").pipe(lambda d: (d.likes / d.reach).is_monotonic_increasing)
    assert len(rate) == len(POSTS)
    res = runner.invoke(
        app,
        [
            "train",
            "--split",
            "time",
            "--epochs",
            "2",
            "--catalog",
            str(db),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "best.pt").is_file()


def test_older_layout_folder_without_insights_or_profile(runner, tmp_path):
    files = ex.export_files(POSTS, old_layout=True, insights=False, profile=False)
    root = ex.write_export_folder(tmp_path / "downloads" / "instagram-lena_b-2024-05-01", files)
    res, db = _import(runner, tmp_path, root.parent)
    assert res.exit_code == 0, res.output
    df = _rows(db)
    assert set(df.account) == {"lena_b"}  # from the export's name
    assert df[df.is_video == 0].image.notna().all()
    assert df.likes.isna().all() and "have no like count" in res.stderr
    first = json.loads((root / "content/posts_1.json").read_text())[0]
    assert "title" not in first  # the older shape: title and time only inside media[0]
    assert df.caption.notna().all() and df.posted_at.notna().all()


def test_insights_alone_give_likes_and_dashes_are_unknown(runner, tmp_path):
    zip_path = ex.write_export_zip(tmp_path / "x.zip", ex.export_files(POSTS), top="export")
    res, db = _import(runner, tmp_path, zip_path)
    assert res.exit_code == 0, res.output
    df = _rows(db).set_index("posted_at")
    newer = POSTS[len(POSTS) // 3 :]
    for p in newer:
        row = df.loc[p.ts]
        assert row.likes == p.likes and row.reach == p.reach and row.impressions == p.views
        assert pd.isna(row.shares) == (p.index % 4 == 0)  # "--" is unknown
        assert pd.isna(row.profile_visits)  # "--" on every post
    older = [p for p in POSTS[: len(POSTS) // 3] if not p.video]
    assert all(pd.isna(df.loc[p.ts].likes) for p in older)


def test_german_csv_with_bom_and_dot_thousands_joins_across_daylight_saving(runner, tmp_path):
    zip_path = ex.write_export_zip(tmp_path / "e.zip", ex.export_files(POSTS, insights=False))
    csv_path = tmp_path / "inhalte.csv"
    csv_path.write_text(ex.content_csv(POSTS, german=True), encoding="utf-8")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    res, db = _import(runner, tmp_path, zip_path, csv_path, args=["--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["join"]["matched"] == len(POSTS)
    df = _rows(db).set_index("posted_at")
    for p in POSTS:
        assert df.loc[p.ts].impressions == p.views and df.loc[p.ts].likes == p.likes


def test_content_csv_alone_with_a_timezone(runner, tmp_path):
    csv_path = tmp_path / "content.csv"
    csv_path.write_text(ex.content_csv(POSTS[:5]), encoding="utf-8")
    res, db = _import(runner, tmp_path, csv_path, args=["--timezone", "Europe/Berlin"])
    assert res.exit_code == 0, res.output
    df = _rows(db)
    assert sorted(df.posted_at) == sorted(p.ts // 60 * 60 for p in POSTS[:5])
    assert df.image.isna().all() and set(df.post_id) == {p.shortcode for p in POSTS[:5]}
    res, _ = _import(runner, tmp_path, csv_path, args=["--timezone", "Mars/Olympus"])
    assert res.exit_code == 1 and "not a time zone name" in res.stderr


def test_unknown_or_malformed_exports_cost_one_line_each(runner, tmp_path):
    good = ex.write_export_zip(tmp_path / "good.zip", ex.export_files(POSTS[:4]))
    other = tmp_path / "holiday.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("photos/a.txt", "hello")
    broken = ex.export_files(POSTS[:4], account="broken.one")
    broken["your_instagram_activity/content/posts_1.json"] = json.dumps({"surprise": 1}).encode()
    broken["logged_information/past_instagram_insights/posts.json"] = b"{not json"
    bad = ex.write_export_zip(tmp_path / "bad.zip", broken)
    res, db = _import(runner, tmp_path, good, other, bad)
    lines = res.stderr.strip().splitlines()
    assert any(
        "holiday.zip: a .zip but not an Instagram export" in x and "photos" in x for x in lines
    )
    assert any("posts_1.json: expected a list of posts" in x and "surprise" in x for x in lines)
    assert any("posts.json: not valid JSON" in x for x in lines)
    assert res.exit_code == 0
    assert (_rows(db).account == "lena.travels").sum() == 4


def test_missing_image_and_damaged_image_keep_the_post(runner, tmp_path):
    files = ex.export_files(PHOTOS[:4])
    del files[PHOTOS[0].uri(0)]
    files[PHOTOS[1].uri(0)] = b"not a jpeg"
    res, db = _import(runner, tmp_path, ex.write_export_zip(tmp_path / "e.zip", files))
    assert res.exit_code == 0
    assert "image file is missing" in res.stderr and "kept without an image" in res.stderr
    assert len(_rows(db)) == 4 and _rows(db).image.notna().sum() == 2


def test_an_older_catalog_upgrades_in_place_with_the_new_columns(tmp_path):
    from imagion.catalog.store import SCHEMA_V1, SCHEMA_VERSION

    db_path = tmp_path / "old.db"
    db = sqlite3.connect(db_path)
    db.executescript(SCHEMA_V1)
    db.execute(
        "INSERT INTO posts (account, post_id, source, source_format, likes) VALUES ('a','1','s','csv',5)"
    )
    db.execute("PRAGMA application_id = 1768776039")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Catalog(db_path) as cat:
        assert cat.schema_version == SCHEMA_VERSION
        df = cat.frame("*")
    assert df.likes.tolist() == [5] and {"reach", "saves", "impressions"} <= set(df.columns)


def test_score_by_a_metric_the_catalog_lacks_says_why(runner, tmp_path):
    db = scored_catalog(tmp_path, 2, 4)
    res = runner.invoke(app, ["score", "--metric", "engagement", "--catalog", str(db)])
    assert res.exit_code == 0
    assert "no likes or no reach" in res.stderr and "scored 0 posts" in res.stdout


@pytest.mark.parametrize(
    "value,expected", [("1,200", 1200), ("12.400", 12400), ("--", None), ("7", 7)]
)
def test_export_numbers(value, expected):
    from imagion.catalog.instagram_export import set_metric
    from imagion.catalog.store import Post

    post = Post("a", "1", "s", "x")
    problems: list[str] = []
    set_metric(post, "reach", value, "here", problems)
    assert post.reach == expected and not problems


def test_csv_alone_then_with_its_export_merges_instead_of_duplicating(runner, tmp_path):
    csv_path = tmp_path / "content.csv"
    csv_path.write_text(ex.content_csv(POSTS), encoding="utf-8")
    res, db = _import(runner, tmp_path, csv_path, args=["--timezone", "Europe/Berlin"])
    assert res.exit_code == 0 and len(_rows(db)) == len(POSTS)
    zip_path = ex.write_export_zip(tmp_path / "e.zip", ex.export_files(POSTS))
    res, db = _import(runner, tmp_path, zip_path, csv_path)
    assert res.exit_code == 0, res.output
    df = _rows(db)
    assert len(df) == len(POSTS)  # one post each, not the CSV's and the export's
    assert df[df.is_video == 0].image.notna().all()
    assert f"{len(POSTS)} posts imported earlier from the content CSV alone" in res.stderr
