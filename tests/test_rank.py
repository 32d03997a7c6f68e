"""`imagion rank` and `imagion compare`, and the bundled default model."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest

from imagion.cli import app
from imagion.inference.rank import compare_images, rank_images
from imagion.models.checkpoints import load_checkpoint
from imagion.settings import bundled_model_path
from tests.helpers import write_image


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pics"
    for k, b in enumerate([0.2, 0.8, 0.5, 0.35, 0.65]):
        write_image(folder / f"img{k}.jpg", b, size=64, seed=k)
    write_image(folder / "sub" / "deep.png", 0.9, size=64)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return folder


def test_rank_order_equals_score_order(trained, pictures):
    _, ckpt = trained
    result = rank_images([pictures], model=ckpt)
    scores = [r.score for r in result.items]
    # the fixture model learned brightness: the ranking is the pictures' brightness order
    # (0.8, 0.65, 0.5, 0.35, 0.2), which the code never sees
    assert [r.path.name for r in result.items] == [
        "img1.jpg",
        "img4.jpg",
        "img2.jpg",
        "img3.jpg",
        "img0.jpg",
    ]
    assert scores == sorted(scores, reverse=True)
    assert (
        len(result.items) == 5 and len(result.problems) == 1 and "broken.jpg" in result.problems[0]
    )
    # the model learnt brightness: the brightest image wins
    assert result.items[0].path.name == "img1.jpg" and result.items[-1].path.name == "img0.jpg"
    assert all(0 <= s <= 10 for s in scores)
    deep = rank_images([pictures], model=ckpt, recursive=True)
    assert len(deep.items) == 6


def test_rank_cli_json_csv_top_copy(runner, trained, pictures, tmp_path):
    _, ckpt = trained
    base = ["rank", str(pictures), "--model", str(ckpt)]
    res = runner.invoke(app, [*base, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["score"] for d in data] == sorted((d["score"] for d in data), reverse=True)
    assert {"path", "score"} <= set(data[0]) and "broken.jpg" in res.stderr
    res = runner.invoke(app, [*base, "--csv", "--top", "2"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 2 and rows[0]["rank"] == "1"
    res = runner.invoke(app, [*base, "--top", "3", "--copy-to", str(tmp_path / "best")])
    copied = sorted(p.name for p in (tmp_path / "best").iterdir())
    assert len(copied) == 3 and copied[0].startswith("01_") and copied[0].endswith("img1.jpg")
    res = runner.invoke(app, ["rank", str(pictures / "*.jpg"), "--model", str(ckpt), "--json"])
    assert len(json.loads(res.stdout)) == 5
    res = runner.invoke(app, ["rank", str(tmp_path / "nothing-here")])
    assert res.exit_code == 1 and "nothing-here: no such file or folder" in res.stderr


def test_compare_probability_consistent_with_scores(runner, trained, pictures):
    _, ckpt = trained
    c = compare_images(pictures / "img1.jpg", pictures / "img0.jpg", model=ckpt)
    assert c.a.score > c.b.score and c.p_a_wins > 0.5 and c.winner.path.name == "img1.jpg"
    rev = compare_images(pictures / "img0.jpg", pictures / "img1.jpg", model=ckpt)
    assert rev.p_a_wins == pytest.approx(1 - c.p_a_wins)
    copy = pictures.parent / "img2-copy.jpg"
    copy.write_bytes((pictures / "img2.jpg").read_bytes())  # the same bytes in another file
    same = compare_images(pictures / "img2.jpg", copy, model=ckpt)
    assert same.p_a_wins == pytest.approx(0.5)
    res = runner.invoke(
        app,
        [
            "compare",
            str(pictures / "img0.jpg"),
            str(pictures / "img1.jpg"),
            "--model",
            str(ckpt),
            "--json",
        ],
    )
    data = json.loads(res.stdout)
    assert data["winner"].endswith("img1.jpg") and data["p_a_beats_b"] < 0.5
    res = runner.invoke(
        app,
        ["compare", str(pictures / "broken.jpg"), str(pictures / "img1.jpg"), "--model", str(ckpt)],
    )
    assert res.exit_code == 1 and "broken.jpg" in res.stderr


def test_bundled_model_loads_offline_with_complete_metadata(pictures):
    path = bundled_model_path()
    assert path.is_file(), "the package must ship imagion/data/default-model.pt"
    loaded = load_checkpoint(path)
    card = loaded.card
    assert card.arch == "effnet-lite0" and card.state_scope == "head"
    training = card.training
    assert training is not None
    assert training.command.startswith("imagion train") and len(training.train_accounts) == 730
    assert training.train_posts == 10745  # instagram-2017
    assert card.calibration is not None and len(card.calibration.q) == 101
    assert card.evaluation["cv"]["accuracy"] and len(card.evaluation["cv"]["ci95"]) == 2
    assert path.stat().st_size < 2_000_000  # the head only (an MLP), never photos
    from imagion.inference.engine import shipped_export

    assert shipped_export(path) is not None  # the light layer's export is of this checkpoint
    result = rank_images([pictures])
    assert len(result.items) == 5 and all(0 <= r.score <= 10 for r in result.items)


def test_onnx_and_torch_engines_agree(trained, pictures, tmp_path):
    import numpy as np

    import imagion.inference.engine as rt
    from imagion.inference.decode import run_files
    from imagion.inference.engine import open_engine
    from imagion.models.checkpoints import card_for, checkpoint_payload, save_checkpoint
    from imagion.models.registry import build_model
    from imagion.models.transforms import Calibration

    _, ckpt = trained
    seed = tmp_path / "seed.pt"
    net = build_model("seed-cnn")
    save_checkpoint(
        seed, checkpoint_payload(net, card_for(net, Calibration.fit(np.linspace(-1, 1, 9))))
    )
    files = sorted(pictures.glob("img*.jpg"))
    for path in (ckpt, seed):
        fast = open_engine(path, "cpu", cache_dir=tmp_path / "cache")
        slow = rt._torch_engine(Path(path), "cpu")
        assert fast.backend == "onnxruntime" and slow.backend == "torch"
        want = fast.labeler is not None
        _, raw_f, feat_f, _ = run_files(
            files, fast.preprocess.size, lambda b, e=fast, w=want: e.forward(b, w)
        )
        _, raw_t, feat_t, _ = run_files(
            files, slow.preprocess.size, lambda b, e=slow, w=want: e.forward(b, w)
        )
        assert np.allclose(raw_f, raw_t, atol=1e-4)
        if want:
            assert np.allclose(feat_f, feat_t, atol=1e-3)
    # the export is cached: a second open does not export again
    folder = next((tmp_path / "cache" / "onnx").iterdir())
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    open_engine(ckpt, "cpu", cache_dir=tmp_path / "cache")
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp


def test_without_onnxruntime_falls_back_to_torch(trained, pictures, monkeypatch):
    import imagion.inference.engine as rt

    _, ckpt = trained
    monkeypatch.setattr(rt, "_onnxruntime", lambda: None)
    result = rank_images([pictures], model=ckpt)
    assert len(result.items) == 5 and result.items[0].path.name == "img1.jpg"


def test_failed_onnx_export_falls_back_to_torch_with_a_note(
    trained, pictures, monkeypatch, tmp_path, capsys, runner
):
    import imagion.inference.engine as rt

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(rt, "export_onnx", broken)
    records: list[logging.LogRecord] = []
    keep = logging.Handler(logging.WARNING)
    keep.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("imagion").addHandler(keep)
    try:
        engine = rt.open_engine(trained[1], "cpu", cache_dir=tmp_path / "fresh-cache")
    finally:
        logging.getLogger("imagion").removeHandler(keep)
    assert engine.backend == "torch"
    assert [r.levelno for r in records if "ONNX Runtime unavailable" in r.getMessage()] == [
        logging.WARNING  # through the `imagion` logger: a library user's logging decides
    ]
    capsys.readouterr()
    monkeypatch.setenv("IMAGION_CACHE", str(tmp_path / "cli-cache"))
    args = ["rank", str(pictures), "--model", str(trained[1]), "--device", "cpu", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "note: ONNX Runtime unavailable" in res.stderr  # the command line's note
    result = rank_images([pictures], model=trained[1], device="cpu")
    assert result.items[0].path.name == "img1.jpg"


def test_advice_for_all_photos_but_one_names_the_exception():
    from imagion.cli.rank_commands import _rank_notes

    rows = [{"rank": k, "suggestion": "Photos showing mountains do well."} for k in range(1, 81)]
    rows[76]["suggestion"] = "Photos showing cats do well."
    lines = _rank_notes(rows, None)
    assert "every photo but #77: Photos showing mountains do well." in lines
    assert "#77: Photos showing cats do well." in lines
    rows = [{"rank": k, "suggestion": "A." if k % 2 or k > 8 else "B."} for k in range(1, 21)]
    lines = _rank_notes(rows, None)
    assert "photos #2, #4, #6, #8: B." in lines  # few: each named
    assert "photos #1, #3, #5, #7, #9–#20: A." in lines  # runs as ranges


def test_a_toss_up_is_a_field_the_cli_reads_not_a_wording():
    from pathlib import Path

    from imagion.inference.rank import Comparison, Ranked
    from imagion.scores import TOSS_UP

    a, b = Ranked(Path("a.jpg"), 5.0, 0.2), Ranked(Path("b.jpg"), 4.0, 0.1)
    assert Comparison(a, b, TOSS_UP - 0.01).toss_up
    assert not Comparison(a, b, TOSS_UP + 0.01).toss_up
    assert not Comparison(a, b, None).toss_up  # unknown is not a toss-up
    assert Comparison(a, b, 1 - TOSS_UP + 0.01).toss_up  # either way round
