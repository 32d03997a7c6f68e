"""What the package ships holds nothing of the machine that built it (no absolute path)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from imagion.settings import RESOURCES

MACHINE_PATH = re.compile(r"(?<![\w.])(/(home|work|tmp|root|Users|var|opt|mnt)/|[A-Za-z]:\\)")


def test_the_shipped_text_files_hold_no_absolute_path():
    texts = [p for p in RESOURCES.rglob("*") if p.suffix in (".json", ".txt", ".md")]
    assert texts  # the walk found the files
    found = [
        (p.name, m.group(0))
        for p in texts
        for m in MACHINE_PATH.finditer(p.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_an_export_records_the_checkpoints_name_not_its_path(tmp_path, monkeypatch):
    import sys

    from imagion.inference import engine

    fake = SimpleNamespace(export_module=lambda net, path, size, names: path.write_bytes(b"x"))
    monkeypatch.setitem(sys.modules, "imagion.models.onnx_export", fake)
    ckpt = tmp_path / "deep" / "me.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    loaded = SimpleNamespace(
        model=None,
        arch="seed-cnn",
        preprocess=SimpleNamespace(size=32, to_dict=lambda: {}),
        calibration=SimpleNamespace(to_dict=lambda: {}),
        card=SimpleNamespace(training=None),
    )
    engine._export_into(tmp_path, tmp_path, None, loaded, ckpt, False)
    meta = json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))
    assert meta["checkpoint"] == "me.pt"
    assert not MACHINE_PATH.search(json.dumps(meta))
