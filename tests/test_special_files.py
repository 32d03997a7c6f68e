"""Special files (FIFOs, devices) are refused, never read: nothing hangs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, scored_catalog, write_image


@pytest.fixture
def three_photos(tmp_path) -> Path:
    src = tmp_path / "photos"
    for i, b in enumerate((0.2, 0.5, 0.8)):
        write_image(src / f"p{i}.jpg", b, size=48, seed=i)
    return src


def _imagion(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "imagion", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails the test instead of the suite
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifos_are_refused_not_read(tmp_path, three_photos):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for args in (["info", "--catalog", str(fifo)], ["posts", "--catalog", str(fifo)]):
        res = _imagion(*args, cwd=tmp_path)
        assert res.returncode == 1 and "not a regular file" in res.stderr, res.stderr
    res = _imagion("rank", str(three_photos), "--stats", str(fifo), cwd=tmp_path)
    assert res.returncode == 1 and "not a regular file" in res.stderr, res.stderr
    res = _imagion("import", str(three_photos), "--catalog", str(fifo), cwd=tmp_path)
    assert res.returncode == 1 and "not a regular file" in res.stderr, res.stderr
    db = scored_catalog(tmp_path / "cat", 2, 3)
    res = _imagion("train", "--catalog", str(db), "--stats", str(fifo), "--out", "r", cwd=tmp_path)
    assert res.returncode == 1 and "not a regular file" in res.stderr, res.stderr


def test_dev_null_is_not_a_catalog(tmp_path):
    res = _imagion("info", "--catalog", "/dev/null", cwd=tmp_path)
    assert res.returncode == 1 and "not a regular file" in res.stderr
    assert not Path("/dev/null-journal").exists()
