"""Checkpoints: bounded by their declared architecture, no hidden tensors, last.pt says what it trained on, damaged caches of them rebuilt."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from imagion.cli import app
from imagion.errors import ImagionError
from tests.helpers import write_image


def _deflated(data: dict, path: Path) -> Path:
    raw = io.BytesIO()
    torch.save(data, raw)
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return path


def test_checkpoint_bound_is_its_declared_architectures(trained, tmp_path, monkeypatch):
    """A lite0 card with hidden weights is held to lite0's bound, not the largest model's."""
    import dataclasses

    from imagion.models import checkpoints, registry

    _, ckpt = trained
    lite0 = registry.REGISTRY["effnet-lite0"]
    small = dataclasses.replace(lite0, max_parameters=100_000)  # bound: 1.6 MB + description
    monkeypatch.setitem(registry.REGISTRY, "effnet-lite0", small)
    monkeypatch.setattr(checkpoints, "DESCRIPTION_BYTES", 1 << 20)
    assert checkpoints.max_unpacked_bytes(None) > 100 << 20  # the largest model's: far above
    data = torch.load(ckpt, weights_only=True)
    data["state_dict"]["head.hidden"] = torch.zeros(2 << 20)  # 8 MiB: deflates to a few kB
    bomb = _deflated(data, tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ImagionError, match="a effnet-lite0 model needs"):
        checkpoints.read_checkpoint(bomb)
    checkpoints.read_checkpoint(ckpt)  # the real one still loads


def test_tensors_under_an_unknown_key_are_refused(trained, tmp_path):
    from imagion.models import checkpoints

    _, ckpt = trained
    data = torch.load(ckpt, weights_only=True)
    data["padding"] = {"x": [torch.zeros(16)]}
    with pytest.raises(ImagionError, match="tensors under padding"):
        checkpoints.read_checkpoint(_deflated(data, tmp_path / "hidden.pt"))


def test_last_pt_says_what_it_trained_on(trained, runner, tmp_path):
    """eval --split val on last.pt uses only held-out posts, as on best.pt."""
    db, best = trained
    last = best.parent / "last.pt"
    outs = []
    for model in (best, last):
        res = runner.invoke(
            app, ["eval", "--catalog", str(db), "--model", str(model), "--split", "val", "--json"]
        )
        assert res.exit_code == 0, res.output
        outs.append(json.loads(res.stdout))
    assert outs[0]["pairs"] == outs[1]["pairs"] and outs[0]["accounts"] == outs[1]["accounts"]
    assert outs[1]["trained_on_eval_accounts"] is False


def test_rank_on_last_pt_says_it_has_no_calibration(runner, trained, tmp_path):
    _, best = trained
    write_image(tmp_path / "a.jpg", 0.3)
    write_image(tmp_path / "b.jpg", 0.7)
    last = best.parent / "last.pt"
    res = runner.invoke(app, ["rank", str(tmp_path), "--model", str(last), "--no-suggest"])
    assert res.exit_code == 0, res.output
    assert "has no calibration" in res.stderr and "raw outputs" in res.stderr
    res = runner.invoke(app, ["rank", str(tmp_path), "--model", str(best), "--no-suggest"])
    assert "has no calibration" not in res.stderr


def test_a_truncated_cached_onnx_export_is_rebuilt(trained, tmp_path):
    from imagion.inference.engine import open_engine

    _, ckpt = trained
    cache = tmp_path / "cache"
    engine = open_engine(ckpt, "cpu", cache_dir=cache)
    (onnx,) = cache.glob("onnx/*/model.onnx")
    onnx.write_bytes(onnx.read_bytes()[:1000])  # a disk filled up mid-write, long ago
    again = open_engine(ckpt, "cpu", cache_dir=cache)
    assert again.backend == engine.backend == "onnxruntime"
    assert onnx.stat().st_size > 1000
    assert not list(cache.glob("onnx/.export-*"))  # no partial export folders left
