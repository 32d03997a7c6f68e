"""Your own past posts: the most similar scored posts of an account, and "already posted"
(issue 36), on tiny generated catalogs with the bundled model."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

import imagion
from imagion.cli import app
from imagion.errors import CatalogError, OptionError
from imagion.inference.engine import open_engine
from imagion.inference.history import History, load_history, opinion
from imagion.inference.past_posts import PastPost
from tests.helpers import scored_catalog, write_image


@pytest.fixture(scope="module")
def two_accounts(tmp_path_factory) -> Path:
    return scored_catalog(tmp_path_factory.mktemp("hist"), accounts=2, posts=8)


def _post_image(db: Path, account: str, k: int) -> Path:
    return sorted((db.parent / "ig" / account).glob("*.jpg"))[k]


@pytest.fixture
def candidates(tmp_path: Path) -> Path:
    folder = tmp_path / "cand"
    for k, b in enumerate([0.3, 0.7]):
        write_image(folder / f"new{k}.jpg", b, size=96, seed=50 + k)
    return folder


def test_similar_posts_of_the_chosen_account_and_already_posted(two_accounts, candidates):
    posted = _post_image(two_accounts, "a0", 2)
    result = imagion.rank([candidates, posted], history=two_accounts, account="a0")
    assert result.history_account == "a0"
    rows = {Path(r["path"]).name: r for r in result.to_list()}
    same = rows[posted.name]
    assert same["already_posted"]["post_id"] == "a0002"
    assert same["already_posted"]["posted_at"].startswith("2020-09-13")
    assert same["similar_posts"][0]["similarity"] > 0.999  # the same features on both sides
    for name in ("new0.jpg", "new1.jpg"):
        assert "already_posted" not in rows[name]
    for row in rows.values():
        posts = row["similar_posts"]
        assert len(posts) == 3
        assert {p["account"] for p in posts} == {"a0"}  # never another account's post
        sims = [p["similarity"] for p in posts]
        assert sims == sorted(sims, reverse=True)


def test_k_and_the_catalog_features_are_cached(two_accounts, candidates, tmp_path):
    engine = open_engine(None, "cpu")
    calls = []
    forward = engine.forward

    def counting(batch, want):
        calls.append(len(batch))
        return forward(batch, want)

    engine.forward = counting
    first = load_history(two_accounts, engine, account="a1", cache_dir=tmp_path)
    assert len(first) == 8 and sum(calls) == 8
    again = load_history(two_accounts, engine, account="a1", cache_dir=tmp_path)
    assert sum(calls) == 8  # read from the cache, not computed again
    np.testing.assert_allclose(again.features, first.features, atol=1e-6)
    result = imagion.rank([candidates], history=two_accounts, account="a1", similar=5)
    assert all(len(r.similar_posts or []) == 5 for r in result.items)


def test_only_posts_before_a_time():
    feats = np.eye(3, dtype=np.float32)
    posts = [PastPost("a", str(k), 100 * k, float(k), 0.0, f"{k}.jpg") for k in range(3)]
    h = History(
        Path("c.db"), "a", posts, feats, np.zeros(3, np.uint64), np.zeros((3, 3)),
        np.array([0.0, 100.0, 200.0]),
    )  # fmt: skip
    near = h.neighbours(np.array([[0.0, 0.6, 0.8]], np.float32), k=3, before=150.0)
    assert [r for r, _ in near[0]] == [1, 0]  # post 2 (t=200) is newer: never used
    assert opinion([h.post(1, 0.6), h.post(0, 0.2)]) == pytest.approx((1 * 0.6 + 0) / 0.8)


def test_several_accounts_need_account(two_accounts, candidates):
    with pytest.raises(CatalogError, match="a0 \\(8 posts\\), a1 \\(8 posts\\)"):
        imagion.rank([candidates], history=two_accounts)
    with pytest.raises(OptionError) as bad:
        imagion.rank([candidates], history=two_accounts, account="zz")
    assert bad.value.option == "account"


def test_cli_table_json_csv(runner, two_accounts, candidates, monkeypatch):
    from imagion.cli.console import out

    monkeypatch.setattr(out, "width", 220)
    posted = _post_image(two_accounts, "a0", 2)
    args = ["rank", str(candidates), str(posted), "--history", str(two_accounts)]
    args += ["--account", "a0"]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert all(len(r["similar_posts"]) == 3 for r in rows)
    res = runner.invoke(app, [*args, "--csv"])
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    by = {Path(r["path"]).name: r for r in table}
    assert by[posted.name]["already_posted"] == "a0002"
    assert len(by["new0.jpg"]["similar_scores"].split(" · ")) == 3
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "you already posted this on 13 Sep 2020; it scored" in res.stdout
    assert "like your posts that scored" in res.stdout


def test_cli_errors(runner, two_accounts, candidates):
    res = runner.invoke(app, ["rank", str(candidates), "--history", str(two_accounts)])
    assert res.exit_code == 1
    assert "--account" in res.output and "a1 (8 posts)" in res.output
    res = runner.invoke(app, ["rank", str(candidates), "--account", "a0"])
    assert res.exit_code == 1 and "--history" in res.output
    res = runner.invoke(app, ["rank", str(candidates), "--history", str(candidates / "x.db")])
    assert res.exit_code == 1 and "no catalog" in res.output
