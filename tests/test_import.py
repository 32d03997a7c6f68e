"""`imagion import`: formats, re-import, bad input, and the real datasets."""

from __future__ import annotations

import json
import lzma
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from imagion.catalog.importers import import_sources
from imagion.catalog.store import Catalog, Post
from imagion.cli import app
from imagion.errors import ImagionError
from tests.helpers import (
    dataset,
    import_into,
    instaloader_node,
    posts_frame,
    write_image,
    write_instaloader_post,
)


def _import(runner, catalog: Path, *sources: Path | str, json_: bool = True):
    args = ["import", *map(str, sources), "--catalog", str(catalog)] + (["--json"] if json_ else [])
    return runner.invoke(app, args)


def _count(catalog: Path) -> int:
    return sqlite3.connect(catalog).execute("SELECT COUNT(*) FROM posts").fetchone()[0]


def test_instaloader_folder_and_reimport(runner, small_ig, catalog_path):
    res = _import(runner, catalog_path, small_ig)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["posts"] == 24 and data["accounts"] == 4 and data["inserted"] == 24
    assert data["posts_with_image"] == 24 and data["problems"] == []
    res = _import(runner, catalog_path, small_ig)
    assert json.loads(res.stdout)["updated"] == 24
    assert _count(catalog_path) == 24
    with Catalog(catalog_path) as cat:
        df = cat.frame()
    assert df["image"].map(lambda p: Path(p).is_absolute()).all()
    assert df["image_sha256"].str.len().eq(64).all()
    assert set(df["tags"].map(json.loads).explode()) == {"tag0", "tag1", "tag2"}


def test_carousel_video_hidden_likes_and_caption_txt(tmp_path, catalog_path):
    folder = tmp_path / "ig" / "someone"
    car = instaloader_node("someone", "CAR", 10, 1, __typename="GraphSidecar")
    write_instaloader_post(folder, "car", car, image_brightness=None)
    write_image(folder / "car_1.jpg", 0.3)
    write_image(folder / "car_2.jpg", 0.6)
    vid = instaloader_node("someone", "VID", 20, 2, is_video=True, __typename="GraphVideo")
    write_instaloader_post(folder, "vid", vid, image_brightness=None)
    hidden = instaloader_node("someone", "HID", -1, 3)
    write_instaloader_post(folder, "hid", hidden)
    (folder / "hid.txt").write_text("caption from txt #Sunset", encoding="utf-8")
    report = import_into(catalog_path, [tmp_path / "ig"])
    assert report.posts == 3 and report.problems == []
    with Catalog(catalog_path) as cat:
        df = cat.frame().set_index("post_id")
        info = cat.info()
    assert df.loc["CAR", "is_carousel"] == 1 and df.loc["CAR", "image"].endswith("car_1.jpg")
    assert df.loc["VID", "is_video"] == 1 and pd.isna(df.loc["VID", "image"])
    assert df.loc["HID", "likes_hidden"] == 1 and df.loc["HID", "caption"].startswith(
        "caption from"
    )
    assert json.loads(df.loc["HID", "tags"]) == ["sunset"]
    assert info["carousels"] == 1 and info["videos"] == 1 and info["hidden_likes"] == 1


def test_likes_from_edge_liked_by(tmp_path, catalog_path):
    node = instaloader_node("x", "A", 0, 1)
    del node["node"]["edge_media_preview_like"]
    node["node"]["edge_liked_by"] = {"count": 77}
    write_instaloader_post(tmp_path / "x", "any-name", node)
    import_into(catalog_path, [tmp_path / "x"])
    assert posts_frame(catalog_path)["likes"].tolist() == [77]


def test_csv_manifest(tmp_path, runner, catalog_path):
    write_image(tmp_path / "imgs" / "a.jpg", 0.2)
    write_image(tmp_path / "imgs" / "b.png", 0.8)
    (tmp_path / "posts.csv").write_text(
        "account,image,likes,posted_at,followers,caption,post_id\n"
        "me,imgs/a.jpg,10,2024-01-01T10:00:00Z,100,hello #beach,p1\n"
        "me,imgs/b.png,20,1704103200,100,,p2\n"
        "me,imgs/a.jpg,lots,2024-01-03,100,,p3\n",
        encoding="utf-8",
    )
    res = _import(runner, catalog_path, tmp_path / "posts.csv")
    data = json.loads(res.stdout)
    assert res.exit_code == 0 and data["posts"] == 2
    assert any("posts.csv:4" in p and "not a number" in p for p in data["problems"])
    df = posts_frame(catalog_path).set_index("post_id")
    assert df.loc["p1", "posted_at"] == 1704103200 and df.loc["p2", "likes"] == 20
    assert Path(df.loc["p2", "image"]) == (tmp_path / "imgs" / "b.png").resolve()


def test_profilecrawl_links_image_when_present(tmp_path, catalog_path):
    write_image(tmp_path / "pic.jpg", 0.5)
    profile = {
        "alias": "crawled",
        "username": "Crawled Person",
        "numberFollowers": 5,
        "posts": [
            {
                "url": "https://www.instagram.com/p/AAA/?taken-by=crawled",
                "isVideo": False,
                "multipleImage": False,
                "tags": ["#Sun"],
                "description": "x",
                "date": "2017-04-30T05:00:00.000Z",
                "numberLikes": 3,
                "filename": "pic.jpg",
            },
            {
                "url": "https://www.instagram.com/p/BBB/",
                "isVideo": False,
                "multipleImage": True,
                "tags": [],
                "description": "y",
                "date": "1970-01-01T00:00:00.000Z",
                "numberLikes": 4,
                "filename": ["gone.jpg"],
            },
        ],
    }
    (tmp_path / "crawled.json").write_text(json.dumps(profile), encoding="utf-8")
    report = import_into(catalog_path, [tmp_path])
    assert report.posts == 2 and report.with_image == 1
    df = posts_frame(catalog_path).set_index("post_id")
    assert df.loc["AAA", "image"].endswith("pic.jpg") and json.loads(df.loc["AAA", "tags"]) == [
        "sun"
    ]
    assert df.loc["BBB", "is_carousel"] == 1 and pd.isna(df.loc["BBB", "posted_at"])


def test_bad_inputs_each_named_and_rest_imported(tmp_path, runner, small_ig, catalog_path):
    bad = small_ig / "acct0"
    # truncated .json.xz
    good = (bad / "2020-09-13_00-00-00_UTC.json.xz").read_bytes()
    (bad / "trunc.json.xz").write_bytes(good[: len(good) // 2])
    # a JSON that is not a post
    (bad / "profile.json").write_text(json.dumps({"node": {"username": "acct0"}}), encoding="utf-8")
    (bad / "weird.json").write_text("[1, 2, 3]", encoding="utf-8")
    # a .jpg that is not an image
    write_instaloader_post(bad, "notimage", instaloader_node("acct0", "NI", 5, 9), None)
    (bad / "notimage.jpg").write_bytes(b"this is not a jpeg")
    # a decompression bomb (huge dimensions, tiny file)
    write_instaloader_post(bad, "bomb", instaloader_node("acct0", "BOMB", 5, 10), None)
    Image.new("1", (20_000, 20_000)).save(bad / "bomb.png")
    # an image that is missing
    write_instaloader_post(bad, "noimage", instaloader_node("acct0", "MISS", 5, 11), None)
    # CSV problems
    (tmp_path / "nocol.csv").write_text("account,image\nme,a.jpg\n", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    res = _import(
        runner,
        catalog_path,
        small_ig,
        tmp_path / "nocol.csv",
        tmp_path / "empty",
        tmp_path / "does-not-exist",
    )
    data = json.loads(res.stdout)
    problems = "\n".join(data["problems"])
    assert "trunc.json.xz: damaged or truncated" in problems
    assert "profile.json: not an Instagram post" in problems
    assert "weird.json: JSON is neither" in problems
    assert "notimage.jpg: not a photo imagion opens" in problems
    assert "bomb.png: refused" in problems
    assert "noimage.json.xz: image file is missing" in problems
    assert "nocol.csv: CSV lacks column(s) likes, posted_at" in problems
    assert "empty: no posts found" in problems
    assert "does-not-exist: no such file or folder" in problems
    # every good post is in, and the bad-image posts are kept without an image
    assert data["posts"] == 24 + 3 and _count(catalog_path) == 27
    # a wrong argument makes the exit status non-zero, but nothing else was lost
    assert res.exit_code == 1
    assert "does-not-exist" in res.stderr


def test_a_file_of_the_wrong_shape_costs_one_line_and_a_bug_of_ours_stays_a_bug(
    tmp_path, monkeypatch
):
    """A post whose owner is a word where an object belongs is skipped in one line and the
    other posts are imported; a TypeError from imagion's own code in the same parser is not
    dressed up as a skipped file."""
    folder = tmp_path / "ig" / "someone"
    write_instaloader_post(folder, "good", instaloader_node("someone", "GOOD", 5, 1))
    odd = instaloader_node("someone", "ODD", 5, 2)
    odd["node"]["owner"] = "someone"
    write_instaloader_post(folder, "odd", odd)
    report = import_into(tmp_path / "c.db", [tmp_path / "ig"])
    assert report.posts == 1
    assert len(report.problems) == 1
    assert "odd.json.xz: unexpected structure, file skipped" in report.problems[0]

    from imagion.catalog import formats

    def bug(text):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(formats, "hashtags", bug)  # used after the JSON is read
    with pytest.raises(TypeError, match="a bug of ours"):
        import_into(tmp_path / "d.db", [folder / "good.json.xz"])


def test_nothing_importable_exits_1(tmp_path, runner, catalog_path):
    (tmp_path / "empty").mkdir()
    res = _import(runner, catalog_path, tmp_path / "empty", json_=False)
    assert res.exit_code == 1 and "no posts found" in res.stderr


def test_catalog_write_is_all_or_nothing(small_ig, catalog_path):
    with Catalog(catalog_path, create=True) as cat:
        _check_all_or_nothing(cat, small_ig)


def _check_all_or_nothing(cat: Catalog, small_ig: Path) -> None:
    import_sources(cat, [small_ig / "acct0"])
    before = cat.frame()
    posts = [
        Post(account="new", post_id=str(i), source="x", source_format="csv", likes=i)
        for i in range(5)
    ]
    posts.append(
        Post(account="new", post_id="bad", source="x", source_format="csv", likes=object())
    )
    with pytest.raises(ImagionError, match="catalog database error"):
        cat.upsert_posts(posts)
    after = cat.frame()
    assert len(after) == len(before) == 6 and after.equals(before)


def test_real_ig_celeb12(runner, tmp_path):
    root = dataset("ig-celeb12")
    cat = tmp_path / "celeb.db"
    for _ in range(2):
        res = _import(runner, cat, root)
        assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["problems"] == [] and _count(cat) == 120
    df = posts_frame(cat)
    assert df["account"].nunique() == 12 and df["image"].notna().all()
    for row in df.itertuples():
        src = Path(row.source)
        node = json.loads(lzma.decompress(src.read_bytes()))["node"]
        assert row.likes == node["edge_media_preview_like"]["count"]
        assert row.post_id == node["shortcode"]


def test_real_profilecrawl(tmp_path):
    root = dataset("profilecrawl-978")
    with Catalog(tmp_path / "pc.db", create=True) as cat:
        report = import_sources(cat, [root])
        info = cat.info()
    assert report.problems == []
    assert info["posts"] == 16_539 and info["accounts"] == 973 and info["posts_with_image"] == 0
