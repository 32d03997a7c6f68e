"""`imagion score`: range, order within accounts, window semantics, min-posts, zero spread; info/posts."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from imagion.catalog.importers import import_sources
from imagion.catalog.scoring import ScoreMapping, score_catalog, score_frame, standardize, to_score
from imagion.catalog.store import Catalog
from imagion.cli import app
from tests.helpers import dataset, import_into


def _frame(groups: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for a, likes in groups.items():
        for t, n in enumerate(likes):
            rows.append({"account": a, "likes": n, "likes_hidden": False, "posted_at": t})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("mapping", list(ScoreMapping))
@pytest.mark.parametrize("log", [False, True])
def test_range_and_order_within_account(mapping, log):
    rng = np.random.default_rng(0)
    groups = {f"a{i}": list(rng.lognormal(5 + i, 1, size=12).round()) for i in range(20)}
    df, report = score_frame(_frame(groups), mapping=mapping, log=log)
    assert report.scored == 240
    s = df["score"]
    assert s.between(0, 10).all()
    if mapping != ScoreMapping.normal:
        assert s.min() == 0 and s.max() == 10
    for _, g in df.groupby("account"):
        order = np.argsort(g["likes"].to_numpy(), kind="stable")
        assert np.all(np.diff(g["score"].to_numpy()[order]) >= 0)


def test_percentile_mapping_is_uniform_and_outlier_proof():
    z = np.r_[np.linspace(-1, 1, 99), 1000.0]
    s = to_score(z, ScoreMapping.percentile)
    assert s[49] == pytest.approx(10 * 49 / 99) and s[-1] == 10
    mm = to_score(z, ScoreMapping.minmax)
    assert (
        mm[:99].max() < 0.05
    )  # the original design's min-max: one outlier squashes everybody else


def test_min_posts_and_zero_spread_get_no_score():
    df, report = score_frame(_frame({"few": [1, 2], "flat": [5, 5, 5, 5], "ok": [1, 2, 3]}))
    scored = df.dropna(subset=["score"])
    assert set(scored["account"]) == {"ok"}
    assert report.unscored == {
        "account has too few usable posts": 2,
        "all likes equal (zero spread)": 4,
    }
    df, _ = score_frame(_frame({"few": [1, 2], "ok": [1, 2, 3]}), min_posts=2)
    assert df["score"].notna().all()


def test_hidden_likes_are_excluded_from_statistics():
    df = _frame({"a": [10, 20, 30, -1]})
    df.loc[3, "likes_hidden"] = True
    out, report = score_frame(df)
    assert report.unscored == {"like count hidden or missing": 1}
    z = out["zscore"].to_numpy()[:3]
    assert z == pytest.approx((np.array([10, 20, 30]) - 20) / np.std([10, 20, 30]))


def test_window_uses_only_the_previous_posts():
    likes = [10.0, 20, 30, 40, 100, 5, 7]
    z, reason = standardize(np.array(["a"] * 7), np.array(likes), window=3, min_posts=3)
    for i in range(7):
        prev = likes[max(0, i - 3) : i]
        if len(prev) < 3:
            assert np.isnan(z[i]) and reason[i] == 4
        else:
            assert z[i] == pytest.approx((likes[i] - np.mean(prev)) / np.std(prev))
    # windows never reach into another account
    z2, _ = standardize(
        np.array(["a"] * 4 + ["b"] * 4), np.array([1.0, 2, 3, 4, 1, 2, 3, 4]), window=3
    )
    assert np.isnan(z2[4:7]).all() and z2[7] == pytest.approx(z2[3])


def test_window_is_scale_invariant_at_large_counts():
    rng = np.random.default_rng(3)
    likes = rng.normal(5e6, 1e5, size=200)
    z, _ = standardize(np.array(["a"] * 200), likes, window=10)
    z_small, _ = standardize(np.array(["a"] * 200), (likes - 4e6) / 1e3, window=10)
    assert np.allclose(z[10:], z_small[10:], atol=1e-6)


def test_cli_score_info_posts(runner, small_ig, catalog_path):
    import_into(catalog_path, [small_ig])
    res = runner.invoke(app, ["info", "--catalog", str(catalog_path), "--json"])
    info = json.loads(res.stdout)
    assert {"accounts": 4, "posts": 24, "posts_with_image": 24, "scored": 0}.items() <= info.items()
    res = runner.invoke(app, ["score", "--catalog", str(catalog_path)])
    assert res.exit_code == 0 and "scored 24 posts of 4 accounts" in res.stdout
    res = runner.invoke(
        app, ["score", "--catalog", str(catalog_path), "--json", "--mapping", "minmax"]
    )
    data = json.loads(res.stdout)
    assert sum(data["histogram"].values()) == 24 and data["settings"]["mapping"] == "minmax"
    res = runner.invoke(
        app, ["posts", "--catalog", str(catalog_path), "--csv", "--account", "acct1"]
    )
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 6 and {"account", "post_id", "likes", "posted_at", "image", "score"} <= set(
        rows[0]
    )
    res = runner.invoke(app, ["posts", "--catalog", str(catalog_path), "--json"])
    assert len(json.loads(res.stdout)) == 24
    res = runner.invoke(app, ["info", "--catalog", str(catalog_path), "--json"])
    assert json.loads(res.stdout)["scored"] == 24


def test_cli_errors_are_one_line(runner, tmp_path):
    res = runner.invoke(app, ["score", "--catalog", str(tmp_path / "missing.db")])
    assert res.exit_code == 1 and "no catalog here" in res.stderr and "Traceback" not in res.output
    res = runner.invoke(app, ["score", "--catalog", str(tmp_path / "x.db"), "--mapping", "bogus"])
    assert res.exit_code == 2
    (tmp_path / "junk.db").write_text("not sqlite at all" * 100)
    res = runner.invoke(app, ["info", "--catalog", str(tmp_path / "junk.db")])
    assert res.exit_code == 1 and "not an imagion catalog" in res.stderr


def test_env_catalog(runner, small_ig, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGION_CATALOG", str(tmp_path / "env.db"))
    assert runner.invoke(app, ["import", str(small_ig / "acct0")]).exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_real_profilecrawl_scores(tmp_path):
    root = dataset("profilecrawl-978")
    with Catalog(tmp_path / "pc.db", create=True) as cat:
        import_sources(cat, [root])
        report = score_catalog(cat)
        df = cat.frame("account, likes, score")
    counts = df.groupby("account")["likes"].transform("size")
    eligible = df[counts >= 3]
    assert report.scored == len(eligible) and eligible["score"].between(0, 10).all()
    for _, g in eligible.groupby("account"):
        g = g.sort_values("likes", kind="stable")
        assert (np.diff(g["score"].to_numpy())[np.diff(g["likes"].to_numpy()) > 0] > 0).all()
