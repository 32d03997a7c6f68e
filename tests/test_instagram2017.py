"""Learning from the instagram-2017 crawl: tone maps, the frozen-feature pipeline, accuracy by
likes ratio, the crawl's placeholder date, suggestions with family-wise evidence, and a real
slice of the crawl end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from imagion.cli import app
from imagion.errors import ImagionError
from imagion.evaluation.metrics import evaluate, likes_ratio
from imagion.models.transforms import Preprocess, apply_tone, tone_augment
from tests.helpers import dataset, scored_catalog, write_image

# --- tone maps -------------------------------------------------------------------------------


def test_crawl_tone_map_is_the_crawls_clip():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    y = apply_tone(x, "crawl")
    assert y[0, 0, 0, 0] == 0 and y[0, 7, 15, 0] == 0  # 127 → 0: the lower half is lost
    assert y[0, 8, 0, 0] == 1 and y[0, 15, 15, 0] == 255  # 128 → 1, 255 → 255
    assert x[0, 15, 15, 0] == 255  # the input is untouched


def test_equalize_spreads_a_dull_image_and_keeps_order():
    rng = np.random.default_rng(0)
    gray = rng.integers(100, 140, size=(1, 32, 32, 1)).astype(np.uint8)
    dull = gray.repeat(3, axis=3)
    eq = apply_tone(dull, "equalize")
    assert np.ptp(eq) > 3 * np.ptp(dull)
    order = np.argsort(dull[..., 0].ravel(), kind="stable")
    assert np.all(np.diff(eq[..., 0].ravel()[order].astype(int)) >= 0)  # darker stays darker


def test_tone_augment_is_reproducible_and_varies():
    x = np.linspace(0, 255, 48, dtype=np.uint8).reshape(1, 4, 4, 3)
    assert np.array_equal(tone_augment(x, 7), tone_augment(x, 7))
    assert not np.array_equal(tone_augment(x, 7), tone_augment(x, 8))


def test_preprocess_records_and_applies_its_tone():
    pre = Preprocess(32, (0.5,) * 3, (0.5,) * 3, "crawl")
    assert Preprocess.from_dict(pre.to_dict()) == pre
    assert Preprocess.from_dict(Preprocess(32, (0.5,) * 3, (0.5,) * 3).to_dict()).tone == "none"
    with pytest.raises(ValueError, match="tone"):
        Preprocess.from_dict(pre.to_dict() | {"tone": "sepia"})
    dark = np.full((1, 32, 32, 3), 100, dtype=np.uint8)  # below 128: the crawl's map makes it 0
    assert np.allclose(pre.normalize_np(dark), -1.0)
    assert torch.allclose(pre.normalize(torch.from_numpy(dark)), torch.tensor(-1.0))


# --- frozen features: ONNX Runtime, cached, resumable ----------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("photos")
    return [str(write_image(root / f"p{i}.jpg", 0.1 + 0.08 * i, seed=i)) for i in range(10)]


def test_features_resume_and_match_pytorch(photos, tmp_path, monkeypatch):
    from imagion.models import caches
    from imagion.models.registry import build_model

    model = build_model("effnet-lite0", image_size=64).eval()
    shas = [f"{i:064x}" for i in range(len(photos))]
    calls: list[int] = []
    real = caches.backbone_forward

    def counting(*a, **k):
        run = real(*a, **k)
        return lambda batch: (calls.append(len(batch)), run(batch))[1]

    monkeypatch.setattr(caches, "backbone_forward", counting)
    cpu = torch.device("cpu")
    first = caches.frozen_features(model, photos[:4], shas[:4], tmp_path, cpu, batch_size=3)
    assert first.ok.all() and sum(calls) == 4
    both = caches.frozen_features(model, photos, shas, tmp_path, cpu, batch_size=3)
    assert sum(calls) == 10  # only the 6 new images were computed
    assert torch.equal(both.x[:4], first.x)
    again = caches.frozen_features(model, photos, shas, tmp_path, cpu)
    assert sum(calls) == 10 and torch.equal(again.x, both.x)
    with torch.inference_mode():  # ONNX Runtime gives PyTorch's features
        arr = np.stack([caches.load_square(p, 64) for p in photos[:3]])
        ref = model.features(model.preprocess.normalize(torch.from_numpy(arr)))
    assert torch.allclose(both.x[:3], ref, atol=1e-4)


def test_features_report_unreadable_images_and_key_tone_and_copies(photos, tmp_path):
    from imagion.models.caches import feature_folder, frozen_features
    from imagion.models.registry import build_model

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    model = build_model("effnet-lite0", image_size=64, tone="equalize").eval()
    feats = frozen_features(
        model, [photos[0], str(bad)], ["a" * 64, "b" * 64], tmp_path, torch.device("cpu")
    )
    assert feats.ok.tolist() == [True, False]
    assert len(feats.problems) == 1 and "bad.jpg" in feats.problems[0]
    assert feature_folder(model, tmp_path).name == "effnet-lite0-64-equalize"
    assert feature_folder(model, tmp_path, augment=2).name == "effnet-lite0-64-equalize-aug2"
    plain = build_model("effnet-lite0", image_size=64)
    assert feature_folder(plain, tmp_path).name == "effnet-lite0-64"  # older caches stay valid


def test_train_with_tone_and_augmented_copies_records_them(tmp_path):
    from imagion.models.checkpoints import read_checkpoint
    from imagion.training.loop import train
    from imagion.training.options import TrainOptions

    db = scored_catalog(tmp_path, 4, 6, seed=2)
    opts = TrainOptions(
        image_size=64, epochs=2, out=tmp_path / "run", val_fraction=0.25, tone="equalize"
    )
    opts.tone_augment = 1
    result = train(db, opts)
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt["preprocess"]["tone"] == "equalize" and ckpt["config"]["tone"] == "equalize"
    cache = Path(__import__("os").environ["IMAGION_CACHE"])
    assert any((cache / "features" / "effnet-lite0-64-equalize-aug1").iterdir())
    assert result.train_posts == 18  # the copies are extra rows, not extra posts


# --- accuracy by likes ratio -----------------------------------------------------------------


def _frame(likes: list[int], pred: list[float], account: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"account": account, "likes": likes, "pred": pred})


def test_likes_ratio_handles_zero():
    likes = np.array([0.0, 10.0, 30.0])
    r = likes_ratio(likes, np.array([0, 1]), np.array([1, 2]))
    assert np.isinf(r[0]) and r[1] == pytest.approx(3.0)


def test_accuracy_by_ratio_counts_and_min_ratio():
    # likes 100, 120, 250, 400: ratios 1.2, 2.5, 4, 2.08, 3.33, 1.6
    df = pd.concat(
        [_frame([100, 120, 250, 400], [1, 0, 3, 4]), _frame([10, 12, 25, 40], [1, 2, 3, 4], "b")]
    )
    rep = evaluate(df, reps=200)
    rows = {r["min_ratio"]: r for r in rep.by_ratio}
    assert [rows[k]["pairs"] for k in (1.0, 1.5, 2.0, 3.0)] == [12, 10, 8, 4]
    assert rows[1.0]["accuracy"] == pytest.approx(11 / 12)  # only 100 vs 120 of account a wrong
    assert rows[1.5]["accuracy"] == 1.0 and rows[1.5]["ci95"] == [1.0, 1.0]
    assert "by_ratio" in rep.to_dict()
    only = evaluate(df, min_ratio=2, reps=200)
    assert only.pairs == 8 and only.accuracy == 1.0
    with pytest.raises(ImagionError, match="min_ratio"):
        evaluate(df, min_ratio=0.5)
    with pytest.raises(ImagionError, match="differ by 50"):
        evaluate(df, min_ratio=50)


def test_eval_cli_prints_ratio_table_and_json(runner, trained):
    db, ckpt = trained
    res = runner.invoke(app, ["eval", "--catalog", str(db), "--model", str(ckpt), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["min_ratio"] for r in data["by_ratio"]] == [1.0, 1.5, 2.0, 3.0]
    assert data["by_ratio"][0]["pairs"] == data["pairs"]
    res = runner.invoke(
        app, ["eval", "--catalog", str(db), "--model", str(ckpt), "--min-ratio", "1.5"]
    )
    assert res.exit_code == 0, res.output
    assert "accuracy by likes ratio" in res.stdout and "≥ 1.5×" in res.stdout


# --- the crawl's placeholder date --------------------------------------------------------------


def test_csv_epoch_placeholder_is_unknown(tmp_path, runner):
    write_image(tmp_path / "a.jpg", 0.3)
    write_image(tmp_path / "b.jpg", 0.6)
    rows = [
        ["account", "image", "likes", "posted_at"],
        ["x", "a.jpg", "10", "1970-01-01T00:00:00.000Z"],
        ["x", "b.jpg", "20", "2017-04-28T05:00:00.000Z"],
    ]
    with open(tmp_path / "posts.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    db = tmp_path / "c.db"
    res = runner.invoke(app, ["import", str(tmp_path / "posts.csv"), "--catalog", str(db)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["posts", "--catalog", str(db), "--json"])
    times = {p["likes"]: p["posted_at"] for p in json.loads(res.stdout)}
    assert times[10] is None and str(times[20]).startswith("2017-04-28")


# --- suggestions need evidence that holds over every label tested ----------------------------


def test_suggestions_need_family_wise_evidence():
    from imagion.labels.suggestions import LabelStats, clearly_positive, family_z, suggest

    def row(label: str, lift: float, half: float) -> dict:
        return {
            "label": label,
            "support": 50,
            "mean_with": 5 + lift,
            "mean_without": 5.0,
            "lift": lift,
            "ci95": [lift - half, lift + half],
        }

    # "dog" clears a plain 95% interval (lower end +0.1) but not one that holds for 100 labels
    lift = [row("cat", 1.0, 0.4), row("dog", 0.5, 0.4)] + [
        row(f"l{k}", 0.0, 0.5) for k in range(98)
    ]
    stats = LabelStats("local", 5000, 5.0, lift, {}, 30)  # type: ignore[arg-type]
    assert family_z(100) > 3.4
    assert [r["label"] for r in clearly_positive(stats)] == ["cat"]
    assert suggest([], 5.0, stats).add == ["cat"]
    assert suggest(["cat"], 5.0, stats).add == []


# --- a real slice of the crawl -----------------------------------------------------------------


def test_real_slice_imports_scores_trains_and_evaluates(tmp_path, runner):
    src = dataset("instagram-2017")
    with open(src / "posts.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = reader.fieldnames or []
    accounts = sorted({r["account"] for r in rows})[:4]
    keep = [dict(r, image=str(src / r["image"])) for r in rows if r["account"] in accounts]
    with open(tmp_path / "slice.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(keep)
    db = str(tmp_path / "slice.db")
    for args in (["import", str(tmp_path / "slice.csv")], ["score"]):
        res = runner.invoke(app, [*args, "--catalog", db])
        assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        ["eval", "--catalog", db, "--cv", "2", "--image-size", "64", "--epochs", "2",
         "--val-fraction", "0", "--hidden", "16", "--dropout", "0.6", "--out",
         str(tmp_path / "cv"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["accounts"] == 4 and data["pairs"] == data["by_ratio"][0]["pairs"] > 100
    assert data["calibration"] is not None and data["calibration"]["pairs"] > 0


def test_featurize_command_computes_once(tmp_path, runner):
    db = scored_catalog(tmp_path, 2, 4, seed=4)
    args = ["featurize", "--catalog", str(db), "--image-size", "64", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["images"], data["computed"], data["skipped"]) == (8, 8, 0)
    again = json.loads(runner.invoke(app, args).stdout)
    assert (again["computed"], again["cached"]) == (0, 8)
    res = runner.invoke(app, ["featurize", "--catalog", str(db), "--arch", "seed-cnn"])
    assert res.exit_code == 1 and "no frozen backbone" in res.output
