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


def test_opinion_uses_only_earlier_posts_of_the_account():
    from imagion.evaluation.history_opinion import past_opinions

    feats = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], np.float32)
    scores = np.array([2.0, 8.0, 5.0, 9.0])
    times = np.array([0.0, 10.0, 5.0, np.nan])
    op = past_opinions(feats, scores, times, np.array(["a", "a", "a", "b"]), k=1)
    assert np.isnan(op[0])  # the first post has no earlier one
    assert op[1] == 2.0  # its nearest EARLIER post, never the later or the other account's
    assert op[2] == 2.0  # weights 0 (orthogonal): the plain mean of its one earlier post
    assert np.isnan(op[3])  # no date: never judged


def test_measure_opinion_on_the_same_pairs():
    import pandas as pd

    from imagion.evaluation.history_opinion import measure_opinion

    frame = pd.DataFrame(
        {"image": ["x", "y", "z"], "pred": [1.0, 2.0, 3.0], "opinion": [5.0, 4.0, np.nan]}
    )
    table = pd.DataFrame(
        {"a": ["x", "x", "y"], "b": ["y", "z", "z"], "likes_a": [1, 1, 2], "likes_b": [2, 3, 3]}
    )
    table["correct"] = [1.0, 1.0, 1.0]
    got = measure_opinion(frame, table, min_pairs=1)
    assert (got.pairs, got.of_pairs) == (1, 3)  # only x–y has two opinions
    assert got.history == 0.0 and got.model == 1.0
    assert got.to_dict()["blend_better"] is False


def test_eval_split_reports_the_history_opinion(runner, tmp_path):
    db = scored_catalog(tmp_path, accounts=2, posts=8)
    res = runner.invoke(app, ["eval", "--catalog", str(db), "--split", "val", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["history_opinion"]
    assert got["pairs"] > 0 and got["pairs"] <= got["of_pairs"]
    assert 0.0 <= got["history_accuracy"] <= 1.0 and 0.0 <= got["model_accuracy"] <= 1.0


def test_compare_pick_and_groups_with_history(runner, two_accounts, candidates):
    posted = _post_image(two_accounts, "a1", 4)
    new = candidates / "new0.jpg"
    hist = ["--history", str(two_accounts), "--account", "a1"]
    res = runner.invoke(app, ["compare", str(new), str(posted), *hist, "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["b"]["already_posted"]["post_id"] == "a1004"
    assert len(got["a"]["similar_posts"]) == 3 and "already_posted" not in got["a"]
    res = runner.invoke(app, ["pick", str(candidates), str(posted), "-n", "3", *hist, "--json"])
    assert res.exit_code == 0, res.output
    picks = {Path(p["path"]).name: p for p in json.loads(res.stdout)}
    assert picks[posted.name]["already_posted"]["post_id"] == "a1004"
    assert all(len(p["similar_posts"]) == 3 for p in picks.values())
    res = runner.invoke(app, ["rank", str(candidates), str(posted), "--groups", *hist, "--json"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert rows[posted.name]["already_posted"]["post_id"] == "a1004"


def test_the_contact_sheets_show_the_past_posts(runner, two_accounts, candidates, tmp_path):
    posted = _post_image(two_accounts, "a1", 4)
    hist = ["--history", str(two_accounts), "--account", "a1"]
    n = len(list(candidates.glob("*.jpg")))
    for command, sheet in (("rank", tmp_path / "r.html"), ("pick", tmp_path / "p.html")):
        args = [command, str(candidates), str(posted), *hist, "--sheet", str(sheet)]
        res = runner.invoke(app, [*args, "-n", str(n + 1)] if command == "pick" else args)
        assert res.exit_code == 0, res.output
        text = sheet.read_text()
        assert "you already posted this on" in text and "like your posts that scored" in text
        assert text.count('alt="your post of ') >= 4  # 1 already posted + 3 similar at least


def test_serve_history_cards_and_api(two_accounts):
    from fastapi.testclient import TestClient

    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app
    from tests.helpers import ROOT
    from tests.serve_helpers import multipart

    posted = _post_image(two_accounts, "a0", 2)
    coffee = ROOT / "data" / "samples" / "coffee.jpg"
    files = [("mine.jpg", posted.read_bytes()), ("new.jpg", coffee.read_bytes())]
    app, scorer = build_app(None, "cpu", Limits(), history=two_accounts, account="a0")
    try:
        with TestClient(app) as client:
            body, ctype = multipart(files)
            res = client.post("/api/score", content=body, headers={"Content-Type": ctype})
            assert res.status_code == 200, res.text
            rows = {r["path"]: r for r in res.json()["results"]}
            assert rows["mine.jpg"]["already_posted"]["post_id"] == "a0002"
            assert len(rows["new.jpg"]["similar_posts"]) == 3
            res = client.post("/", content=body, headers={"Content-Type": ctype})
            assert "you already posted this on 13 Sep 2020" in res.text
            assert "like your posts that scored" in res.text
            # each past post shown as a thumbnail with its score: 1 already posted + 3 similar
            assert res.text.count('alt="your post of ') == 4
    finally:
        scorer.close()


def test_the_blend_must_be_clearly_better():
    from imagion.evaluation.history_opinion import HistoryOpinion

    slight = HistoryOpinion(3744, 3744, 0.533, 0.556, 0.558, blend_wins=60, blend_losses=52)
    assert not slight.blend_better and "not clearly better" in slight.verdict()
    clear = HistoryOpinion(3744, 3744, 0.6, 0.556, 0.6, blend_wins=300, blend_losses=140)
    assert clear.blend_better and "the blend measures better" in clear.verdict()


def test_posts_whose_images_are_gone(tmp_path, candidates, runner):
    db = scored_catalog(tmp_path, accounts=1, posts=4)
    images = sorted((tmp_path / "ig" / "a0").glob("*.jpg"))
    images[0].unlink()
    result = imagion.rank([candidates], history=db)
    assert any(images[0].name in p for p in result.problems)  # said, and the rest still used
    assert all(len(r.similar_posts or []) == 3 for r in result.items)
    other = scored_catalog(tmp_path / "other", accounts=1, posts=4, seed=5)
    for p in (tmp_path / "other" / "ig" / "a0").glob("*.jpg"):
        p.unlink()  # never looked up before: nothing cached either
    res = runner.invoke(app, ["rank", str(candidates), "--history", str(other)])
    assert res.exit_code == 1 and "none of the 4 images" in res.output


def test_a_ranking_with_history_uses_the_photo_index(two_accounts, candidates, tmp_path):
    import sqlite3

    index = tmp_path / "ix.sqlite"
    first = imagion.rank([candidates], history=two_accounts, account="a1", index=index)
    with sqlite3.connect(index) as db:  # the history pass stored its rows…
        assert db.execute("SELECT count(*) FROM photos").fetchone()[0] == first.scored
    again = imagion.rank([candidates], history=two_accounts, account="a1", index=index)
    assert [r.similar_posts for r in again] == [r.similar_posts for r in first]  # …and reads them
