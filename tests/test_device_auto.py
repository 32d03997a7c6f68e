"""One meaning of `device` auto (imagion.settings.choose_backend), used by the engine, PyTorch's
pick_device and Ray: each case faked (an NVIDIA device file, onnxruntime-gpu, PyTorch's CUDA)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from imagion import settings
from imagion.errors import OptionError
from imagion.settings import Backend, choose_backend
from tests.helpers import ROOT
from tests.test_light_install import BLOCK


def _machine(
    monkeypatch, *, nvidia: bool, ort: bool = True, ort_cuda: bool = False, torch_cuda: bool = False
) -> None:
    monkeypatch.setattr(settings, "has_nvidia", lambda: nvidia)
    monkeypatch.setattr(settings, "onnxruntime_module", lambda: object() if ort else None)
    monkeypatch.setattr(settings, "onnxruntime_has_cuda", lambda: ort and ort_cuda)
    monkeypatch.setattr(settings, "torch_has_cuda", lambda: torch_cuda)


@pytest.mark.parametrize(
    ("machine", "choice", "expected"),
    [
        ({"nvidia": False}, "auto", Backend("onnxruntime", "cpu")),
        ({"nvidia": True, "ort_cuda": True}, "auto", Backend("onnxruntime", "cuda")),
        ({"nvidia": True, "torch_cuda": True}, "auto", Backend("torch", "cuda")),
        ({"nvidia": True}, "auto", Backend("onnxruntime", "cpu")),  # no runtime sees the GPU
        ({"nvidia": True, "ort": False}, "auto", Backend("torch", "cpu")),
        ({"nvidia": False, "ort": False}, "auto", Backend("torch", "cpu")),
        ({"nvidia": True, "ort_cuda": True}, "cpu", Backend("onnxruntime", "cpu")),
        ({"nvidia": True, "torch_cuda": True}, "cuda", Backend("torch", "cuda")),
        ({"nvidia": True, "ort_cuda": True}, "cuda", Backend("onnxruntime", "cuda")),
    ],
)
def test_each_machine_gets_one_backend(monkeypatch, machine, choice, expected):
    _machine(monkeypatch, **machine)
    assert choose_backend(choice) == expected


def test_cuda_without_a_usable_gpu_and_an_unknown_device_are_option_errors(monkeypatch):
    _machine(monkeypatch, nvidia=True)
    with pytest.raises(OptionError) as err:
        choose_backend("cuda")
    assert err.value.option == "device" and err.value.value == "cuda"
    with pytest.raises(OptionError) as err:
        choose_backend("gpu")
    assert err.value.option == "device"


def test_pytorch_follows_the_same_rule(monkeypatch):
    torch = pytest.importorskip("torch")
    _machine(monkeypatch, nvidia=False, torch_cuda=True)  # WSL: no device file, PyTorch sees it
    assert choose_backend("auto", onnx=False) == Backend("torch", "cuda")
    assert settings.pick_device("auto") == torch.device("cuda", 0)
    assert settings.pick_device("cpu") == torch.device("cpu")
    _machine(monkeypatch, nvidia=True, ort_cuda=True, torch_cuda=False)
    assert settings.pick_device("auto") == torch.device("cpu")  # ONNX Runtime's GPU is not torch's


def test_the_engine_asks_onnx_runtime_for_cuda_when_auto_finds_it(monkeypatch, tmp_path):
    from imagion.inference import engine

    made = {}

    class FakeOrt:
        class SessionOptions:
            intra_op_num_threads = 0

            def add_session_config_entry(self, key: str, value: str) -> None:
                pass

        @staticmethod
        def InferenceSession(path, opts, providers):
            made["providers"] = providers
            raise RuntimeError("stop here")

    _machine(monkeypatch, nvidia=True, ort_cuda=True)
    monkeypatch.setattr(engine, "_onnxruntime", lambda: FakeOrt)
    seen = {}
    monkeypatch.setattr(engine, "_torch_engine", lambda ckpt, device: seen.setdefault("d", device))
    engine._open(settings.bundled_model_path(), "auto", tmp_path)
    assert made["providers"][0] == "CUDAExecutionProvider"
    assert seen["d"] == "auto"  # the export failed: PyTorch, under the same rule


@pytest.mark.parametrize(
    ("device", "cluster", "gpus"),
    [
        ("auto", {"CPU": 8, "GPU": 2}, 1),
        ("auto", {"CPU": 8}, 0),
        ("cuda", {"CPU": 8}, 1),
        ("cpu", {"CPU": 8, "GPU": 2}, 0),
    ],
)
def test_ray_actors_reserve_a_gpu_when_auto_finds_one_on_the_cluster(device, cluster, gpus):
    pytest.importorskip("pyarrow")
    from imagion.scale.ray_data import gpus_per_actor

    ray = SimpleNamespace(cluster_resources=lambda: cluster)
    assert gpus_per_actor(ray, device) == gpus


def test_rank_works_on_an_nvidia_machine_without_pytorch(tmp_path):
    env = dict(os.environ, IMAGION_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    code = BLOCK + (
        "import imagion.settings\n"
        "imagion.settings.has_nvidia = lambda: True\n"
        "from imagion.cli import main\n"
        f"sys.argv = ['imagion', 'rank', {str(ROOT / 'data' / 'samples')!r}, '--json']\n"
        "main()\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)) == 5


def test_onnxruntime_gpu_without_its_cuda_libraries_says_so_and_runs_on_the_cpu(
    monkeypatch, tmp_path, caplog
):
    from imagion.inference import engine

    class Session:
        def get_providers(self):
            return ["CPUExecutionProvider"]  # what ONNX Runtime falls back to

    class FakeOrt:
        class SessionOptions:
            intra_op_num_threads = 0

            def add_session_config_entry(self, key: str, value: str) -> None:
                pass

        @staticmethod
        def InferenceSession(path, opts, providers):
            return Session()

    _machine(monkeypatch, nvidia=True, ort_cuda=True)
    monkeypatch.setattr(engine, "_onnxruntime", lambda: FakeOrt)
    opened = engine._open(settings.bundled_model_path(), "auto", tmp_path)
    assert opened.backend == "onnxruntime" and opened.device == "cpu"
    assert any("CUDA provider" in r.message for r in caplog.records)
