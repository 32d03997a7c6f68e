"""One path: each command's result is the library verb's result. The command line parses,
calls the verb and renders; here each command runs both ways on the same input and the
results are compared (the CLI's --json against the verb's typed result)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import imagion
from imagion.cli import app
from tests.helpers import ROOT, make_instaloader, scored_catalog

SAMPLES = ROOT / "data" / "samples"


def _cli(runner, *args: str) -> object:
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture
def source(tmp_path):
    return make_instaloader(tmp_path / "ig", {"a": [10, 50, 30, 20, 40], "b": [5, 9, 7, 1, 3]})


def test_import(runner, tmp_path, source):
    via_cli = _cli(runner, "import", str(source), "--catalog", str(tmp_path / "cli.db"))
    report = imagion.import_posts([source], tmp_path / "py.db")
    mine = report.to_dict()
    for key in ("inserted", "updated", "posts", "accounts", "posts_with_image", "by_format"):
        assert via_cli[key] == mine[key], key


def test_score_info_and_posts(runner, tmp_path, source):
    imagion.import_posts([source], tmp_path / "cli.db")
    shutil.copy(tmp_path / "cli.db", tmp_path / "py.db")
    via_cli = _cli(runner, "score", "--catalog", str(tmp_path / "cli.db"), "--mapping", "normal")
    assert via_cli == imagion.score(tmp_path / "py.db", mapping="normal").to_dict()
    info = _cli(runner, "info", "--catalog", str(tmp_path / "py.db"))
    assert info == imagion.info(tmp_path / "py.db")
    rows = _cli(runner, "posts", "--catalog", str(tmp_path / "py.db"), "--account", "b")
    assert rows == imagion.posts(tmp_path / "py.db", accounts=["b"]).records()


def test_labels(runner, tmp_path):
    db = scored_catalog(tmp_path, 3, 6)
    via_cli = _cli(runner, "labels", "--catalog", str(db), "--provider", "hashtags", "--table")
    report = imagion.label(db, provider="hashtags")
    assert report.stats is not None
    assert via_cli["tables"] == [report.stats.to_dict()]


def test_rank_compare_and_pick(runner):
    rows = _cli(runner, "rank", str(SAMPLES), "--top", "3")
    assert rows == imagion.rank([SAMPLES], top=3).to_list()
    a, b = SAMPLES / "chelsea-cat.jpg", SAMPLES / "coffee.jpg"
    assert _cli(runner, "compare", str(a), str(b)) == imagion.compare(a, b).to_dict()
    picked = _cli(runner, "pick", str(SAMPLES), "-n", "2")
    assert picked == imagion.pick([SAMPLES], 2).to_list()


def test_eval_and_featurize(runner, trained):
    db, best = trained
    via_cli = _cli(runner, "eval", "--catalog", str(db), "--model", str(best), "--device", "cpu")
    report = imagion.evaluate(db, best, device="cpu")
    assert via_cli["accuracy"] == pytest.approx(report.accuracy)
    assert via_cli["pairs"] == report.pairs and via_cli["ci95"] == pytest.approx(report.ci95)
    via_cli = _cli(runner, "featurize", "--catalog", str(db), "--device", "cpu")
    rep = imagion.featurize(db, device="cpu")
    assert via_cli["images"] == rep.images and rep.cached == rep.images  # the CLI's, cached


@pytest.mark.slow
def test_train(runner, tmp_path):
    db = scored_catalog(tmp_path, 4, 6, seed=2)
    args = ["--arch", "effnet-lite0", "--epochs", "2", "--device", "cpu", "--seed", "3"]
    via_cli = _cli(runner, "train", "--catalog", str(db), "--out", str(tmp_path / "a"), *args)
    result = imagion.train(
        db, arch="effnet-lite0", epochs=2, device="cpu", seed=3, out=tmp_path / "b"
    )
    mine = result.summary()
    for key in ("arch", "epochs_run", "train_posts", "val_posts", "train_accounts"):
        assert via_cli[key] == mine[key], key
    assert via_cli["best_val_pairwise_accuracy"] == pytest.approx(
        mine["best_val_pairwise_accuracy"]
    )


def test_models(runner):
    assert _cli(runner, "models") == [a.to_dict() for a in imagion.architectures()]


@pytest.fixture(scope="module")
def served():
    """The server (the bundled model, no batching) as a test client."""
    from fastapi.testclient import TestClient

    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app

    app_, scorer = build_app(None, "cpu", Limits(), False)
    try:
        yield TestClient(app_)
    finally:
        scorer.close()


def _post(client, path: str, photos: list[Path], **form: str):
    from tests.serve_helpers import multipart

    body, ctype = multipart([(p.name, p.read_bytes()) for p in photos])
    if form:  # the form fields, as parts of the same multipart body
        extra = "".join(
            f'--{ctype.split("=")[1]}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in form.items()
        )
        body = extra.encode() + body
    res = client.post(path, content=body, headers={"content-type": ctype})
    assert res.status_code == 200, res.text
    return res


@pytest.fixture(scope="module")
def shoot(tmp_path_factory):
    """Three sample photos and a re-saved copy of the first (one group of two)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("shoot")
    photos = sorted(SAMPLES.glob("*.jpg"))[:3]
    for p in photos:
        shutil.copy(p, folder / p.name)
    with Image.open(photos[0]) as im:
        im.save(folder / "copy.jpg", quality=80)
    return sorted(folder.glob("*.jpg"))


def test_serve_scores_as_rank_does(served):
    """The page's JSON API and the library give each picture the same score, range and raw."""
    photos = sorted(SAMPLES.glob("*.jpg"))[:3]
    got = {r["path"]: r for r in _post(served, "/api/score", photos).json()["results"]}
    ranked = imagion.rank(photos)
    for item in ranked.to_list():
        mine = got[Path(item["path"]).name]
        for key in ("score", "score_low", "score_high", "raw"):
            assert mine[key] == pytest.approx(item[key], abs=1e-3), key
    page = _post(served, "/", photos).text  # the page: the same order, best first
    at = [page.index(r.path.name) for r in ranked]
    assert at == sorted(at)


def test_serve_picks_as_pick_does(served, shoot):
    """/api/pick and the page /pick group and pick as imagion.pick does (one grouping code)."""
    mine = imagion.pick(shoot, 2, similarity=0.9)
    got = _post(served, "/api/pick", shoot, n="2", similarity="0.9").json()
    names = [Path(p["path"]).name for p in mine.to_list()]
    assert [Path(p["path"]).name for p in got["picks"]] == names
    for theirs, ours in zip(got["picks"], mine.to_list(), strict=True):
        assert theirs["score"] == pytest.approx(ours["score"], abs=1e-3)
    groups = [[Path(r["path"]).name, r["group"]] for r in mine.grouping.to_list()]
    flat = [r for g in got["groups"] for r in g["photos"]]  # a list of groups, each its photos
    assert [[Path(r["path"]).name, r["group"]] for r in flat] == groups
    assert len(mine.grouping) == len(shoot) - 1  # the copy joined its original
    page = _post(served, "/pick", shoot, n="2", similarity="0.9").text
    at = [page.index(n) for n in names]
    assert at == sorted(at)


def test_serve_health_names_the_model_the_verbs_use(served):
    health = served.get("/healthz").json()
    model = Path(imagion.rank([SAMPLES / "coffee.jpg"]).model).name
    assert health["status"] == "ok" and health["model"].startswith(model)


def test_no_grouping_code_outside_inference():
    """The server calls inference.groups (group_decoded); it has no copy of the pass."""
    for path in (ROOT / "imagion" / "serve").glob("*.py"):
        text = path.read_text()
        for piece in ("fingerprints(", "Shots(", "grouped(", "cluster(", "np.linalg.norm"):
            assert piece not in text, (path.name, piece)
