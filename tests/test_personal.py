"""Honest answers (issue #9): calibrated probabilities, time splits for one account, --init,
suggestions with evidence only, pictures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imagion.catalog.store import Catalog
from imagion.cli import app
from imagion.errors import ImagionError
from imagion.models.checkpoints import read_card, read_checkpoint
from imagion.models.transforms import Calibration, fit_pair_scale
from imagion.training.loop import train
from imagion.training.options import TrainOptions
from imagion.training.split import split_by_time
from tests.helpers import make_instaloader, scored_catalog, write_image

FAST = {"arch": "effnet-lite0", "image_size": 64, "epochs": 4, "lr": 1e-2, "device": "cpu"}


@pytest.fixture(scope="module")
def one_account(tmp_path_factory) -> Path:
    """One account, 12 posts, brightness grows with likes (the only user of a personal model)."""
    root = tmp_path_factory.mktemp("one")
    rng = np.random.default_rng(7)
    make_instaloader(root / "ig", {"me": [int(x) for x in rng.permutation(12) * 10 + 5]})
    from imagion.catalog.importers import import_sources
    from imagion.catalog.scoring import score_catalog

    with Catalog(root / "c.db", create=True) as cat:
        import_sources(cat, [root / "ig"])
        score_catalog(cat)
    return root / "c.db"


def _frame(times: list[float | None], account: str = "a") -> pd.DataFrame:
    return pd.DataFrame(
        {"account": account, "post_id": [f"p{k}" for k in range(len(times))], "posted_at": times}
    )


def test_time_split_holds_out_the_newest_posts():
    df = _frame([50, 10, 40, 20, 30, 60, 70, 80, 90, 100])
    is_val, undated = split_by_time(df, 0.2)
    assert sorted(df.loc[is_val, "posted_at"]) == [90, 100] and undated == 0


def test_time_split_keeps_ties_on_one_side_and_counts_missing_dates():
    df = _frame([10, 20, 30, 40, 50, 50, 50, None, 60, None])
    is_val, undated = split_by_time(df, 0.3)
    val = set(df.loc[is_val, "posted_at"])
    assert 50 in val and 60 in val and 40 not in val  # all three posts at t=50 validate
    assert undated == 2 and not is_val[7] and not is_val[9]


def test_time_split_too_few_posts_says_the_minimum():
    with pytest.raises(ImagionError, match=r"at least 4 dated posts in one account.*has 3"):
        split_by_time(_frame([1, 2, 3]), 0.5)


def test_personal_model_on_one_account(one_account, tmp_path, runner):
    res = runner.invoke(
        app,
        [
            "train",
            "--catalog",
            str(one_account),
            "--split",
            "time",
            "--init",
            "default",
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "me"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    card = read_card(tmp_path / "me" / "best.pt")
    record = card.training
    assert record is not None
    assert (
        record.split == "time"
        and record.train_accounts == ["me"]
        and (record.init or "").endswith("default-model.pt")
    )
    assert card.config["image_size"] == 224  # taken from the bundled model
    assert card.config["hidden"] == 256 and card.config["dropout"] == 0.6
    last_train = record.time_range("me")[1]
    with Catalog(one_account) as cat:
        newest = cat.frame("posted_at").posted_at.max()
    assert last_train < newest
    assert card.calibration is not None and "validation pairs" in (
        card.calibration.pair_source or ""
    )
    # eval on the posts it did not train on: the newest ones
    res = runner.invoke(
        app,
        [
            "eval",
            "--catalog",
            str(one_account),
            "--model",
            str(tmp_path / "me" / "best.pt"),
            "--split",
            "time",
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["pairs"] >= 1 and not data["trained_on_eval_accounts"]
    # its 80% range was fitted on exactly these validation posts: not measured on them, said so
    assert record.val_time_range["me"][1] == newest
    assert data["scores"] is None and "cannot be measured" in data["scores_unmeasured"]
    # before/after on the same pairs: the bundled model on the posts the new one did not see
    base = ["eval", "--catalog", str(one_account), "--device", "cpu", "--json"]
    res = runner.invoke(app, [*base, "--split", "time"])
    assert res.exit_code == 0, res.output
    every = json.loads(res.stdout)  # the bundled model never saw the account: every post
    assert every["pairs"] > data["pairs"] and "`same_posts_as`" in " ".join(every["notes"])
    res = runner.invoke(app, [*base[:-1], "--split", "time"])
    assert "--same-posts-as" in res.stderr, res.stderr
    res = runner.invoke(app, [*base, "--same-posts-as", str(tmp_path / "me" / "best.pt")])
    assert res.exit_code == 0, res.output
    same = json.loads(res.stdout)
    assert same["pairs"] == data["pairs"] and any("pair for pair" in n for n in same["notes"])
    # on all posts it warns: it trained on most of them
    res = runner.invoke(
        app,
        [
            "eval",
            "--catalog",
            str(one_account),
            "--model",
            str(tmp_path / "me" / "best.pt"),
            "--device",
            "cpu",
        ],
    )
    assert "WARNING: the model trained on" in res.stderr


def test_rolling_origin_cv_on_one_account(one_account, tmp_path, runner):
    out = tmp_path / "pairs.csv"
    res = runner.invoke(
        app,
        [
            "eval",
            "--catalog",
            str(one_account),
            "--cv",
            "time",
            "--time-blocks",
            "3",
            "--arch",
            "effnet-lite0",
            "--image-size",
            "64",
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "cv"),
            "--pairs-out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["pairs"] > 0 and "rolling-origin" in data["evaluated"]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == data["pairs"]
    assert {"account", "a", "b", "likes_a", "likes_b", "p_a_beats_b"} <= set(rows[0])
    res = runner.invoke(
        app, ["eval", "--catalog", str(one_account), "--cv", "time", "--time-blocks", "7"]
    )
    assert res.exit_code == 1 and "needs at least 14 dated posts" in res.stderr


def test_init_must_match_architecture_and_preprocessing(one_account, tmp_path):
    base = TrainOptions(
        **FAST, out=tmp_path / "a", split="time", val_fraction=0.3, cache_dir=tmp_path / "cache"
    )
    first = train(one_account, base).checkpoint
    from dataclasses import replace

    with pytest.raises(ImagionError, match=r"is a effnet-lite0 model, this run trains seed-cnn"):
        train(
            one_account,
            replace(base, arch="seed-cnn", image_size=None, init=str(first), out=tmp_path / "b"),
        )
    with pytest.raises(ImagionError, match=r"--image-size 64"):
        train(one_account, replace(base, image_size=96, init=str(first), out=tmp_path / "c"))
    # a compatible --init starts from its weights (a negligible learning rate keeps them)
    again = train(
        one_account, replace(base, init=str(first), lr=1e-12, epochs=1, out=tmp_path / "d")
    ).checkpoint
    a, b = read_checkpoint(first)["state_dict"], read_checkpoint(again)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_probability_comes_from_held_out_pairs_only(tmp_path):
    db = scored_catalog(tmp_path, 6, 8, seed=3)
    opts = TrainOptions(
        **FAST, out=tmp_path / "noval", val_fraction=0.0, cache_dir=tmp_path / "cache"
    )
    cal = read_checkpoint(train(db, opts).checkpoint)["calibration"]
    assert cal["pair_source"].startswith("out-of-fold predictions of a 4-fold CV")
    assert cal["pair_metrics"]["pairs"] > 20
    # a checkpoint of imagion 0.1 (scale fitted on training pairs) shows no probability
    legacy = Calibration.from_dict({"raw_quantiles": [0.0, 1.0], "pair_scale": 7.0})
    assert legacy.pair_scale is None and legacy.win_probability(1.0, 0.0) is None


def test_pair_scale_shrinks_to_a_coin_on_little_or_no_signal():
    rng = np.random.default_rng(0)
    assert fit_pair_scale(np.array([1.0, 2.0, 0.5, 3.0]), np.ones(4)) < 5  # 4 lucky pairs
    d = rng.normal(size=2000)
    assert fit_pair_scale(d, (rng.random(2000) < 0.5).astype(float)) < 0.1  # noise
    y = (rng.random(2000) < 1 / (1 + np.exp(-2 * d))).astype(float)
    assert 1.6 < fit_pair_scale(d, y) < 2.4  # a real signal is recovered


def test_eval_reports_calibration_and_draws_a_plot(trained, tmp_path, runner):
    db, ckpt = trained
    plot = tmp_path / "eval.png"
    res = runner.invoke(
        app,
        [
            "eval",
            "--catalog",
            str(db),
            "--model",
            str(ckpt),
            "--split",
            "val",
            "--plot",
            str(plot),
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    cal = json.loads(res.stdout)["calibration"]
    assert {"log_loss", "brier", "ece", "bins"} <= set(cal) and sum(
        b["pairs"] for b in cal["bins"]
    ) == cal["pairs"]
    with Image.open(plot) as im:
        assert im.size == (2860, 572)  # reliability, by likes ratio, accounts, baselines, scores
    res = runner.invoke(
        app,
        [
            "eval",
            "--catalog",
            str(db),
            "--model",
            str(ckpt),
            "--plot",
            str(tmp_path / "no" / "x.png"),
        ],
    )
    assert res.exit_code == 1 and "folder" in res.stderr and "does not exist" in res.stderr


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".html"])
def test_rank_contact_sheet(trained, tmp_path, runner, suffix):
    for k in range(3):
        write_image(tmp_path / "pics" / f"p{k}.jpg", 0.2 + 0.3 * k, size=64, seed=k)
    sheet = tmp_path / f"sheet{suffix}"
    res = runner.invoke(
        app, ["rank", str(tmp_path / "pics"), "--model", str(trained[1]), "--sheet", str(sheet)]
    )
    assert res.exit_code == 0, res.output
    if suffix == ".html":
        text = sheet.read_text()
        assert text.count("<figure>") == 3 and text.index("p2.jpg") < text.index(
            "p0.jpg"
        )  # best first
    else:
        with Image.open(sheet) as im:
            assert im.size == (900, 380)
    res = runner.invoke(
        app, ["rank", str(tmp_path / "pics"), "--sheet", str(tmp_path / "nope" / "s.png")]
    )
    assert res.exit_code == 1 and "does not exist" in res.stderr and "ranked" not in res.stderr


def test_stats_files_are_checked_and_used(trained, tmp_path, runner):
    image = write_image(tmp_path / "a.jpg", 0.5)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    res = runner.invoke(app, ["rank", str(image), "--model", str(trained[1]), "--stats", str(bad)])
    assert res.exit_code == 1 and "not label statistics" in res.stderr
    stats = {
        "provider": "mine",
        "posts": 50,
        "mean_score": 5.0,
        "min_support": 5,
        "per_bucket": {},
        "lift": [
            {
                "label": "sunset",
                "support": 12,
                "mean_with": 7.0,
                "mean_without": 4.5,
                "lift": 2.5,
                "ci95": [1.0, 4.0],
            }
        ],
    }
    good = tmp_path / "stats.json"
    good.write_text(json.dumps(stats))
    res = runner.invoke(
        app, ["rank", str(image), "--model", str(trained[1]), "--stats", str(good), "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["suggest_labels"] == ["sunset"]
    # stored with a personal model, it becomes that model's default
    db = trained[0]
    res = runner.invoke(
        app,
        [
            "train",
            "--catalog",
            str(db),
            "--arch",
            "effnet-lite0",
            "--image-size",
            "64",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--stats",
            str(good),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["rank", str(image), "--model", str(tmp_path / "run" / "best.pt"), "--json"]
    )
    assert json.loads(res.stdout)[0]["suggest_labels"] == ["sunset"]


def test_compare_without_held_out_calibration_says_so(tmp_path, runner, learnable_seed):
    a, b = write_image(tmp_path / "a.jpg", 0.2), write_image(tmp_path / "b.jpg", 0.8)
    res = runner.invoke(app, ["compare", str(a), str(b), "--model", str(learnable_seed), "--json"])
    data = json.loads(res.stdout)
    assert data["p_a_beats_b"] is None and data["calibrated_on"] is None
    res = runner.invoke(app, ["compare", str(a), str(b), "--model", str(learnable_seed)])
    assert "No win probability" in res.stdout


@pytest.fixture(scope="module")
def learnable_seed(tmp_path_factory) -> Path:
    """A seed-cnn trained without validation: no held-out data, so no probability."""
    root = tmp_path_factory.mktemp("seed")
    db = scored_catalog(root, 3, 4)
    opts = TrainOptions(
        arch="seed-cnn",
        epochs=1,
        device="cpu",
        out=root / "run",
        val_fraction=0.0,
        cache_dir=root / "cache",
    )
    return train(db, opts).checkpoint


def test_crop_advice_only_when_likely_better(trained, tmp_path, runner):
    """The fixture model learned brightness: the bright end of a half-dark landscape photo is a
    crop worth taking; a uniform photo has none. (The fixture's own calibration, fitted on 16
    validation posts, is too cautious to reach 60%; the test gives it a confident one.)"""
    ckpt = read_checkpoint(trained[1])
    ckpt["calibration"] |= {"pair_scale": 5.0, "pair_source": "test: a confident model"}
    confident = tmp_path / "confident.pt"
    torch.save(ckpt, confident)
    arr = np.zeros((120, 300, 3), dtype=np.uint8)
    arr[:, 200:] = 230  # the right third is bright
    Image.fromarray(arr).save(tmp_path / "half.png")
    write_image(tmp_path / "flat.jpg", 0.5, size=120)
    crops = tmp_path / "crops"
    res = runner.invoke(
        app,
        [
            "rank",
            str(tmp_path / "half.png"),
            str(tmp_path / "flat.jpg"),
            "--model",
            str(confident),
            "--crops",
            str(crops),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    crop = rows["half.png"]["crop"]
    assert (
        crop["position"] == "end"
        and crop["p_better"] >= 0.6
        and crop["score"] > crop["original_score"]
    )
    assert "crop" not in rows["flat.jpg"]
    written = sorted(p.name for p in crops.iterdir())
    assert written == [f"half.crop-{crop['format'].replace(':', 'x')}.jpg"]


def test_one_account_with_two_posts_gets_one_line(tmp_path, runner):
    make_instaloader(tmp_path / "ig", {"me": [10, 20]})
    db = tmp_path / "c.db"
    assert runner.invoke(app, ["import", str(tmp_path / "ig"), "--catalog", str(db)]).exit_code == 0
    assert runner.invoke(app, ["score", "--catalog", str(db), "--min-posts", "2"]).exit_code == 0
    for args, needle in (
        (["train", "--split", "time"], "at least 4 dated posts in one account"),
        (["train"], "a split by account needs at least 2"),
        (["eval", "--cv", "time"], "needs at least 8 dated posts"),
    ):
        res = runner.invoke(
            app, [*args, "--catalog", str(db), "--device", "cpu", "--out", str(tmp_path / "r")]
        )
        assert res.exit_code == 1 and needle in res.stderr and "Traceback" not in res.output, (
            res.output
        )


def test_the_range_is_measured_only_on_posts_it_was_not_fitted_on():
    """`eval --split time` of a personal model: its 80% range was fitted on its validation
    posts (the newest), so coverage there is no measure; newer posts count, and with none the
    report says it cannot be measured."""
    from imagion.evaluation.metrics import shown_score_figures
    from imagion.models.card import TrainingRecord
    from imagion.workflows.protocols import range_fitted_mask

    df = pd.DataFrame({"account": ["me"] * 6 + ["other"], "posted_at": [1, 2, 3, 4, 5, 6, 4]})
    record = TrainingRecord(
        split="time", train_accounts=["me"], val_accounts=["me"], train_posts=3, val_posts=2,
        train_time_range={"me": [1, 3]}, val_time_range={"me": [4, 5]},
    )  # fmt: skip
    assert range_fitted_mask(df, record).tolist() == [0, 0, 0, 1, 1, 0, 0]
    old = TrainingRecord(**{**record.to_dict(), "val_time_range": {}})  # before it was recorded
    assert range_fitted_mask(df, old).tolist() == [1, 1, 1, 1, 1, 1, 0]
    by_account = TrainingRecord(train_accounts=["me"], val_accounts=["other"], val_posts=1)
    assert range_fitted_mask(df, by_account).tolist() == [0] * 6 + [1]
    shown = pd.DataFrame(
        {"expected": [5.0] * 4, "low": [1.0] * 4, "high": [9.0] * 4, "score": [5.0, 2, 9.5, 7]}
    )
    scores, why = shown_score_figures(shown.assign(range_fitted=[True] * 4))
    assert scores is None and "fitted on these 4 posts" in (why or "")
    scores, why = shown_score_figures(shown.assign(range_fitted=[True, True, False, False]))
    assert why is None and scores is not None
    assert scores["posts"] == 2 and scores["left_out"] == 2 and scores["coverage"] == 0.5
