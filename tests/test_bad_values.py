"""One bad value costs one line: import values, CSV rows, JSON files, images, globs."""

from __future__ import annotations

import json
import lzma
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagion.catalog.importers import import_sources
from imagion.catalog.store import Catalog
from imagion.catalog.values import count_value, time_value
from imagion.cli import app
from imagion.images import find_images, load_square
from tests.helpers import instaloader_node, posts_frame, write_image, write_instaloader_post


def _report(tmp_path: Path, *sources: Path):
    with Catalog(tmp_path / "c.db", create=True) as cat:
        report = import_sources(cat, list(sources))
        return report, cat.frame().set_index("post_id"), cat.info()


@pytest.mark.parametrize(
    "value, expected",
    [("12", 12), ("12.0", 12), (7, 7), (3.0, 3), ("", None), (None, None), ("1e3", 1000)],
)
def test_count_values_accepted(value, expected):
    assert count_value(value, "likes") == expected


@pytest.mark.parametrize(
    "value, reason",
    [
        ("inf", "not a finite number"),
        (float("nan"), "not a finite number"),
        ("99999999999999999999", "out of range"),
        (1e20, "out of range"),
        ("12.7", "not a whole number"),
        ("-5", "out of range"),
        ("lots", "not a number"),
        (True, "not a number"),
        ([1], "not a number"),
    ],
)
def test_count_values_refused_with_reason(value, reason):
    with pytest.raises(ValueError, match=reason):
        count_value(value, "likes")


def test_times_seconds_milliseconds_iso_and_refusals():
    assert time_value(1_600_000_000) == 1_600_000_000
    assert time_value("1600000000000") == 1_600_000_000  # milliseconds, detected
    assert time_value("2024-01-01T10:00:00Z") == 1_704_103_200
    for bad in ("99999999999", "-5", "9999-01-01", "1e300", "inf"):
        with pytest.raises(ValueError, match=r"out of range|finite"):
            time_value(bad)
    with pytest.raises(ValueError, match="not a date"):
        time_value("yesterday")


def test_csv_bad_rows_each_cost_one_line(tmp_path, runner):
    write_image(tmp_path / "a.jpg", 0.3)
    rows = [
        "account,image,likes,posted_at,followers",
        "me,a.jpg,10,1600000000,5",  # good
        "me,a.jpg,inf,1600000001,5",  # non-finite likes
        "me,a.jpg,99999999999999999999,1600000002,5",  # absurd likes
        "me,a.jpg,12.7,1600000003,5",  # fractional likes
        "me,a.jpg,-3,1600000004,5",  # negative likes
        "me,a.jpg,4,1600000000000,5",  # milliseconds: detected
        "me,a.jpg,5,99999999999,5",  # neither seconds nor milliseconds
        "me,a.jpg,6,1600000007,5,oops",  # an unquoted comma: one field too many
        "me,a.jpg,7",  # too few fields
        "me,a.jpg,8,1600000009,1e30",  # absurd followers: kept, followers unknown
    ]
    (tmp_path / "m.CSV").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # post ids default to the image: give each row its own
    text = (tmp_path / "m.CSV").read_text().splitlines()
    text[0] += ",post_id"
    text = [text[0]] + [
        f"{line},p{k}" if line.count(",") >= 3 else line for k, line in enumerate(text[1:])
    ]
    (tmp_path / "m.CSV").write_text("\n".join(text) + "\n", encoding="utf-8")
    res = runner.invoke(
        app, ["import", str(tmp_path), "--catalog", str(tmp_path / "c.db"), "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    problems = "\n".join(data["problems"])
    assert "m.CSV:3: likes 'inf' is not a finite number; row skipped" in problems
    assert "m.CSV:4: likes '99999999999999999999' is out of range" in problems
    assert "m.CSV:5: likes '12.7' is not a whole number" in problems
    assert "m.CSV:6: likes '-3' is out of range" in problems
    assert "m.CSV:8: posted_at '99999999999' is out of range" in problems
    assert "m.CSV:9: 7 fields where the header has 6 (an unquoted comma?)" in problems
    assert "m.CSV:10: 3 fields where the header has 6" in problems
    assert (
        "m.CSV:11: followers '1e30' is out of range (0 to 1,000,000,000,000); stored as unknown"
        in problems
    )
    assert data["posts"] == 3
    df = posts_frame(tmp_path / "c.db").set_index("post_id")
    assert df.loc["p5", "posted_at"] == 1_600_000_000 and df.loc["p5", "likes"] == 4
    assert np.isnan(df.loc["p9", "followers"]) and df.loc["p9", "likes"] == 8
    assert runner.invoke(app, ["info", "--catalog", str(tmp_path / "c.db")]).exit_code == 0


def test_instaloader_absurd_values_skip_one_post(tmp_path):
    folder = tmp_path / "ig" / "acct"
    write_instaloader_post(folder, "good", instaloader_node("acct", "GOOD", 10, 1_600_000_000))
    write_instaloader_post(folder, "huge", instaloader_node("acct", "HUGE", 10, 1_600_000_001))
    raw = json.loads(lzma.decompress((folder / "huge.json.xz").read_bytes()))
    raw["node"]["edge_media_preview_like"]["count"] = 1e20
    (folder / "huge.json.xz").write_bytes(lzma.compress(json.dumps(raw).encode()))
    ms = instaloader_node("acct", "MS", 11, 1_600_000_002_000)
    write_instaloader_post(folder, "ms", ms)
    neg = instaloader_node("acct", "NEG", -7, 1_600_000_003)
    write_instaloader_post(folder, "neg", neg)
    report, df, _ = _report(tmp_path, tmp_path / "ig")
    problems = "\n".join(report.problems)
    assert "huge.json.xz: likes 1e+20 is out of range" in problems and "post skipped" in problems
    assert "neg.json.xz: likes -7 is out of range" in problems
    assert set(df.index) == {"GOOD", "MS"} and df.loc["MS", "posted_at"] == 1_600_000_002


def test_duplicates_reported_and_profilecrawl_tag_string(tmp_path):
    post = {
        "url": "https://www.instagram.com/p/DUP/",
        "numberLikes": 3,
        "date": "2017-04-30",
        "tags": "#Sun #sea, beach",
    }
    profile = {"alias": "crawled", "posts": [post, post | {"numberLikes": 4}]}
    (tmp_path / "crawled.json").write_text(json.dumps(profile), encoding="utf-8")
    report, df, _ = _report(tmp_path, tmp_path / "crawled.json")
    assert report.duplicates == 1
    assert any(
        "post crawled/DUP also read from" in p and "later one is kept" in p for p in report.problems
    )
    assert df.loc["DUP", "likes"] == 4
    assert json.loads(df.loc["DUP", "tags"]) == ["beach", "sea", "sun"]


def test_hostile_json_files_cost_one_line_each(tmp_path, small_ig):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with lzma.open(bad / "bomb.json.xz", "wb") as f:  # 80 MiB of zeros compress to ~12 KB
        chunk = b" " * (1 << 20)
        for _ in range(80):
            f.write(chunk)
    assert (bad / "bomb.json.xz").stat().st_size < 100_000
    report, df, _ = _report(tmp_path, small_ig, bad)
    problems = "\n".join(report.problems)
    assert "deep.json: JSON nested too deeply" in problems
    assert "bomb.json.xz: expands to more than 16 MiB" in problems
    assert len(df) == 24


def test_sixteen_bit_grayscale_is_scaled_not_white(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    arr = load_square(path, 32)
    assert 100 < arr.mean() < 155 and arr.min() < 20 and arr.max() > 235


def test_folder_scans_find_every_readable_format_any_case(tmp_path):
    for name in ("a.gif", "b.TIFF", "c.bmp", "d.JPG", "e.webp"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    found, _ = find_images([tmp_path])
    assert sorted(p.name for p in found) == ["a.gif", "b.TIFF", "c.bmp", "d.JPG", "e.webp"]


def test_recursive_glob_survives_symlink_cycles(tmp_path):
    deep = tmp_path / "dir" / "a" / "b"
    deep.mkdir(parents=True)
    write_image(deep / "x.jpg", 0.5)
    os.symlink(tmp_path / "dir", deep / "loop")  # a cycle
    found, problems = find_images([str(tmp_path / "dir" / "**" / "*.jpg")], recursive=True)
    assert [p.name for p in found] == ["x.jpg"] and problems == []
    found, _ = find_images([tmp_path / "dir"], recursive=True)
    assert [p.name for p in found] == ["x.jpg"]


def test_rank_decoder_threads_leave_no_warning_filter(tmp_path):
    import warnings

    before = list(warnings.filters)
    paths = [write_image(tmp_path / f"{k}.jpg", 0.5, seed=k) for k in range(6)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: load_square(p, 16), paths * 5))
    assert warnings.filters == before
