"""Models, checkpoints and `imagion train` (CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imagion.catalog.scoring import score_catalog
from imagion.catalog.store import Catalog
from imagion.cli import app
from imagion.errors import ImagionError
from imagion.models.card import CheckpointCard
from imagion.models.checkpoints import load_checkpoint, read_card, read_checkpoint
from imagion.models.registry import build_model, list_models
from imagion.training.loop import train
from imagion.training.options import TrainOptions
from tests.helpers import ROOT, import_into, make_instaloader, posts_frame, scored_catalog


def test_seed_cnn_matches_the_appendix():
    model = build_model("seed-cnn")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 17_400_865
    x = torch.zeros(2, 3, 100, 100)
    sizes = []
    for layer in model.convs:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d | torch.nn.MaxPool2d):
            sizes.append(x.shape[-1])
    assert sizes == [100, 98, 49, 49, 47, 23]
    assert x.flatten(1).shape[1] == 33_856
    assert model(torch.zeros(2, 3, 100, 100)).shape == (2,)
    assert model.preprocess.size == 100


def test_effnet_is_pretrained_and_frozen():
    assert "effnet-lite0" in list_models()
    model = build_model("effnet-lite0")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("head.") for n in trainable)
    assert model.preprocess.size == 224
    # the weights are exactly the package's (two random inits would also differ from each other)
    from imagion.models.networks import load_effnet_state

    package = load_effnet_state(0)
    state = model.backbone.state_dict()
    shared = [k for k in package if k in state and not k.startswith("_fc")]
    assert len(shared) > 100 and all(torch.equal(state[k], package[k]) for k in shared)


@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> Path:
    """8 accounts × 8 posts; the image's brightness grows with its likes."""
    return scored_catalog(tmp_path_factory.mktemp("learn"), 8, 8)


def _opts(tmp: Path, **kw) -> TrainOptions:
    base = {
        "arch": "seed-cnn",
        "epochs": 3,
        "batch_size": 16,
        "lr": 3e-4,
        "device": "cpu",
        "out": tmp / "run",
        "cache_dir": tmp / "cache",
        "val_fraction": 0.25,
    }
    return TrainOptions(**(base | kw))


@pytest.mark.slow
def test_seed_cnn_learns_brightness(learnable, tmp_path):
    result = train(learnable, _opts(tmp_path))
    assert result.best_val_accuracy >= 0.9
    assert not set(result.train_accounts) & set(result.val_accounts)
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,train_loss,val_loss")


def test_checkpoint_round_trip_and_metadata(learnable, tmp_path):
    result = train(learnable, _opts(tmp_path, arch="effnet-lite0", epochs=3, lr=1e-2))
    loaded = load_checkpoint(result.checkpoint)
    card = loaded.card
    assert card.arch == "effnet-lite0" and card.state_scope == "head"
    assert card.preprocess.size == 224 and card.calibration is not None
    assert card.training is not None and card.training.val_accounts == result.val_accounts
    assert len(card.metrics["per_epoch"]) == 3 and card.imagion_version
    # last.pt carries the same card, without a calibration (an explicit state)
    last = read_card(tmp_path / "run" / "last.pt")
    assert last.calibration is None and last.training == card.training
    assert set(last.to_dict()) == set(card.to_dict())
    again = CheckpointCard.from_dict(card.to_dict())
    assert again.to_dict() == card.to_dict()
    assert result.checkpoint.stat().st_size < 100_000  # the backbone comes from its package
    # the checkpoint holds the trained head: its predictions equal the head's own on features
    x = torch.rand(2, 3, 224, 224)
    state = read_checkpoint(result.checkpoint)["state_dict"]
    trained_head = build_model("effnet-lite0").eval()
    untrained = trained_head.head[1].weight.detach().clone()
    trained_head.load_state_dict(state, strict=False)
    assert not torch.equal(untrained, trained_head.head[1].weight)  # something was loaded
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), trained_head(x), atol=1e-4)  # fused BN, same maths
    assert not list((tmp_path / "run").glob("*.imagion-tmp"))


@pytest.mark.slow
def test_resume_equals_uninterrupted(learnable, tmp_path):
    full = train(
        learnable, _opts(tmp_path / "a", arch="effnet-lite0", epochs=4, lr=1e-2, patience=99)
    )
    train(learnable, _opts(tmp_path / "b", arch="effnet-lite0", epochs=2, lr=1e-2, patience=99))
    resumed = train(
        learnable,
        _opts(tmp_path / "b", arch="effnet-lite0", epochs=4, lr=1e-2, patience=99, resume=True),
    )
    assert [r["train_loss"] for r in resumed.history] == pytest.approx(
        [r["train_loss"] for r in full.history]
    )
    a = read_checkpoint(tmp_path / "a" / "run" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "run" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_checkpoint(learnable, tmp_path, monkeypatch):
    import imagion.training.loop as train_module

    calls = {"n": 0}
    real = train_module.CheckpointWriter.last

    def interrupt_after_first_epoch(self, *args):
        real(self, *args)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.CheckpointWriter, "last", interrupt_after_first_epoch)
    opts = _opts(tmp_path, arch="effnet-lite0", epochs=3, lr=1e-2)
    result = train(learnable, opts)
    assert result.interrupted and result.checkpoint.is_file() and result.epochs_run == 1
    monkeypatch.setattr(train_module.CheckpointWriter, "last", real)
    opts.resume = True
    resumed = train(learnable, opts)
    assert resumed.epochs_run == 3 and not resumed.interrupted


def test_bad_inputs(tmp_path, learnable, runner):
    # an unscored catalog
    make_instaloader(tmp_path / "ig", {"a": [1, 2, 3], "b": [3, 4, 5]})
    import_into(tmp_path / "u.db", [tmp_path / "ig"])
    with pytest.raises(ImagionError, match="run `imagion score` first"):
        train(tmp_path / "u.db", _opts(tmp_path))
    # too few accounts for a split
    with Catalog(tmp_path / "u.db") as cat:
        score_catalog(cat)
    with pytest.raises(ImagionError, match="at least 2"):
        train(tmp_path / "u.db", _opts(tmp_path, accounts=["a"]))
    # --device cuda without CUDA
    if not torch.cuda.is_available():
        res = runner.invoke(app, ["train", "--catalog", str(learnable), "--device", "cuda"])
        assert res.exit_code == 1 and "no CUDA GPU" in res.stderr
    # a checkpoint from another architecture, a corrupt file
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(ImagionError, match=r"not a readable checkpoint|not an imagion checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ImagionError, match="not an imagion checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    result = train(learnable, _opts(tmp_path / "x", arch="effnet-lite0", epochs=1))
    ckpt = read_checkpoint(result.checkpoint)
    ckpt["arch"] = "seed-cnn"
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(
        ImagionError,
        match=r"do not fit|does not match its seed-cnn config|config does not fit seed-cnn",
    ):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_undecodable_image_is_skipped_and_counted(tmp_path):
    db = scored_catalog(tmp_path, 3, 5)
    victim = posts_frame(db)["image"].iloc[0]
    Path(victim).write_bytes(Path(victim).read_bytes()[:200])  # truncated JPEG
    result = train(db, _opts(tmp_path, arch="effnet-lite0", epochs=1, val_fraction=0.34))
    assert len(result.skipped_images) == 1 and Path(victim).name in result.skipped_images[0]
    assert result.train_posts + result.val_posts == 14


def test_cli_train_json(learnable, tmp_path, runner):
    res = runner.invoke(
        app,
        [
            "train",
            "--catalog",
            str(learnable),
            "--arch",
            "effnet-lite0",
            "--epochs",
            "2",
            "--out",
            str(tmp_path / "r"),
            "--json",
            "--device",
            "cpu",
        ],
        env={"IMAGION_CACHE": str(tmp_path / "cache")},
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["epochs_run"] == 2 and Path(data["checkpoint"]).is_file()


@pytest.mark.slow
def test_ddp_two_gloo_processes(learnable, tmp_path):
    env = os.environ | {"IMAGION_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29533",
        "-m",
        "imagion",
        "train",
        "--catalog",
        str(learnable),
        "--arch",
        "seed-cnn",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "ddp"),
        "--json",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = read_card(tmp_path / "ddp" / "best.pt").training
    assert record is not None and record.world_size == 2


@pytest.mark.slow
def test_seed_cnn_resume_equals_uninterrupted(learnable, tmp_path):
    """The full network too: dropout, flips and shuffling are re-seeded per epoch."""
    kw = {"epochs": 3, "patience": 99, "accounts": ["a0", "a1", "a2", "a3"], "val_fraction": 0.25}
    full = train(learnable, _opts(tmp_path / "a", **kw))
    train(learnable, _opts(tmp_path / "b", **(kw | {"epochs": 1})))
    resumed = train(learnable, _opts(tmp_path / "b", **kw, resume=True))
    assert [r["train_loss"] for r in resumed.history] == pytest.approx(
        [r["train_loss"] for r in full.history]
    )
    a = read_checkpoint(tmp_path / "a" / "run" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "run" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_seed_loss_mse_trains_and_a_seed_cnn_checkpoint_evaluates(learnable, tmp_path, runner):
    """The original design's own loss, and `eval` running the full network (no feature cache)."""
    result = train(learnable, _opts(tmp_path, loss="mse", epochs=2))
    card = read_card(result.checkpoint)
    assert card.state_scope == "full" and card.training and card.training.options["loss"] == "mse"
    history = card.metrics["per_epoch"]
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    res = runner.invoke(
        app,
        [
            "eval",
            "--catalog",
            str(learnable),
            "--model",
            str(result.checkpoint),
            "--split",
            "val",
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pairs"] > 0


def test_finetune_and_hidden_head(learnable, tmp_path):
    opts = _opts(
        tmp_path,
        arch="effnet-lite0",
        finetune=True,
        hidden=8,
        image_size=64,
        epochs=1,
        batch_size=32,
    )
    result = train(learnable, opts)
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt["config"] == {"finetune": True, "hidden": 8, "image_size": 64}
    assert ckpt["state_scope"] == "full" and "head.4.weight" in ckpt["state_dict"]
    assert any(k.startswith("backbone.") for k in ckpt["state_dict"])  # the backbone was trained
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.preprocess.size == 64 and loaded.model(torch.rand(1, 3, 64, 64)).shape == (1,)


def test_best_checkpoint_exists_before_training_ends(learnable, tmp_path, monkeypatch):
    """best.pt is written whenever validation improves, not only after the loop (like timm)."""
    import imagion.training.loop as loop

    seen: list[bool] = []
    real = loop.CheckpointWriter.last

    def spy(self, *args):
        seen.append((self.out / "best.pt").is_file())
        real(self, *args)

    monkeypatch.setattr(loop.CheckpointWriter, "last", spy)
    train(learnable, _opts(tmp_path, arch="effnet-lite0", epochs=2, lr=1e-2))
    assert seen and seen[0] is True
