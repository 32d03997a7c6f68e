"""The command line's decoders share one byte budget (issue #35: eight 59 MP PNGs with 16
threads peaked at 3.8 GB): however many threads, the pixels being decoded at once stay within
it. bench/decode_memory.py measures the real peak (docs/benchmarks.md)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

import imagion.images as images
from imagion.cli import app
from imagion.images import decoded_bytes, open_image
from imagion.memory import DECODING


@pytest.fixture
def pngs(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for k in range(6):
        arr = np.full((300, 400, 3), 40 * k, np.uint8)
        Image.fromarray(arr).save(folder / f"p{k}.png", compress_level=1)
    return folder


def test_rank_decodes_within_the_shared_budget_whatever_the_threads(pngs, runner, monkeypatch):
    one = decoded_bytes(open_image(pngs / "p0.png"), 224)
    monkeypatch.setenv("IMAGION_THREADS", "8")
    monkeypatch.setattr(DECODING, "total", int(one * 1.5))  # room for one decode at a time
    monkeypatch.setattr(DECODING, "peak", 0)
    real, inside, most = images.decoded, [0], [0]
    lock = threading.Lock()

    def slow_decoded(im, size, where):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)  # long enough for eight threads to overlap, were they let in
        try:
            return real(im, size, where)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(images, "decoded", slow_decoded)
    res = runner.invoke(app, ["rank", str(pngs), "--no-suggest", "--json"])
    assert res.exit_code == 0, res.output
    assert most[0] == 1
    assert 0 < DECODING.peak <= DECODING.total and DECODING.used == 0


def test_the_server_and_the_command_line_share_one_mechanism():
    from imagion.memory import ByteBudget
    from imagion.serve import limits, scorer

    assert limits.ByteBudget is ByteBudget and scorer.ByteBudget is ByteBudget
    assert isinstance(DECODING, ByteBudget)


def test_freed_pixels_are_given_back_after_a_large_decode(pngs, monkeypatch):
    """glibc keeps what each thread freed in its own arena: 16 threads taking turns kept 2.0 GB
    for eight 59 MP PNGs within the budget; a large decode hands its memory back."""
    calls: list[int] = []
    monkeypatch.setattr(images, "give_back_freed", lambda: calls.append(1))
    monkeypatch.setattr(images, "TRIM_BYTES", decoded_bytes(open_image(pngs / "p0.png"), 64))
    images.load_square(pngs / "p0.png", 64)
    assert calls == [1]
    from imagion.memory import give_back_freed

    give_back_freed()  # callable here, whatever the C library
