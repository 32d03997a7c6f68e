"""Special files and server memory: a FIFO anywhere imagion reads is named, never waited on;
the bundled model is "default" everywhere a checkpoint is asked for; the server's decodes are
bounded in bytes, all requests together; refusals read as sentences."""

from __future__ import annotations

import io
import os
import threading
import time
import tracemalloc

import numpy as np
from PIL import Image

from imagion.cli import app
from tests.helpers import scored_catalog, write_image


def test_a_fifo_as_model_or_import_source_is_named_for_what_it_is(tmp_path, runner):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    write_image(tmp_path / "a.jpg", 0.5)
    res = runner.invoke(app, ["rank", str(tmp_path / "a.jpg"), "--model", str(fifo)])
    assert res.exit_code == 1 and "not a regular file" in res.stderr, res.output
    res = runner.invoke(app, ["import", str(fifo), "--catalog", str(tmp_path / "c.db")])
    assert res.exit_code == 1 and "not a regular file" in res.stderr, res.output
    assert "no such file" not in res.stderr


def test_a_fifo_inside_a_ranked_folder_is_listed(tmp_path, runner):
    write_image(tmp_path / "photos" / "a.jpg", 0.5)
    write_image(tmp_path / "photos" / "deep" / "b.jpg", 0.4)
    os.mkfifo(tmp_path / "photos" / "deep" / "c.jpg")
    res = runner.invoke(app, ["rank", "-r", str(tmp_path / "photos")])
    assert res.exit_code == 0, res.output
    assert "c.jpg: not a regular file" in res.stderr
    assert "ranked 2 images" in res.stderr


def test_eval_model_default_is_the_bundled_model(tmp_path, runner):
    db = scored_catalog(tmp_path, 3, 5)
    res = runner.invoke(
        app, ["eval", "--catalog", str(db), "--model", "default", "--device", "cpu", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert "default-model.pt" in res.stdout


def test_scaling_a_16_bit_picture_takes_no_float64_copies():
    arr = (np.random.default_rng(0).random((1500, 1500)) * 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    im = Image.open(io.BytesIO(buf.getvalue()))
    im.load()
    from imagion.images import to_rgb

    tracemalloc.start()
    try:
        rgb = to_rgb(im)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pixels = arr.size
    assert peak < 6 * pixels, peak  # was ~40 bytes a pixel: five float64 copies
    assert abs(np.asarray(rgb).mean() - arr.mean() / 257) < 0.5


def test_decodes_hold_at_most_the_servers_byte_budget():
    from imagion.serve.limits import ByteBudget

    budget = ByteBudget(100)
    inside, most = [0], [0]
    lock = threading.Lock()

    def job(n: int) -> None:
        held = min(n, 100)  # one larger than the budget takes all of it, alone
        with budget.hold(n):
            with lock:
                inside[0] += held
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= held

    threads = [threading.Thread(target=job, args=(n,)) for n in (60, 60, 30, 30, 500, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert most[0] <= 100 and budget.peak <= 100 and budget.used == 0


def test_the_scorer_reserves_what_a_full_decode_takes(trained):
    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app
    from imagion.serve.scorer import Upload

    _, ckpt = trained
    _, scorer = build_app(str(ckpt), "cpu", Limits(max_decode_bytes=64 << 20), False)
    try:
        png = io.BytesIO()
        Image.fromarray(np.zeros((1200, 1200), dtype=np.uint16)).save(png, "PNG")
        scorer.decode(Upload("deep.png", png.getvalue()))
        assert 1200 * 1200 * 6 <= scorer.memory.peak <= 64 << 20
        assert scorer.memory.used == 0
    finally:
        scorer.close()


def test_a_413_reads_as_sentences(trained):
    from fastapi.testclient import TestClient

    from imagion.serve.limits import MB, Limits
    from imagion.serve.runner import build_app
    from tests.serve_helpers import multipart

    _, ckpt = trained
    app_, scorer = build_app(str(ckpt), "cpu", Limits(max_file_bytes=1 * MB), False)
    try:
        client = TestClient(app_)
        body, ctype = multipart([("a.jpg", b"\xff" * (MB + 10)), ("b.jpg", b"\xff" * (MB + 10))])
        res = client.post("/api/score", content=body, headers={"content-type": ctype})
        assert res.status_code == 413
        error = res.json()["error"]
        assert ".;" not in error and error.endswith("."), error
    finally:
        scorer.close()


def test_many_unreadable_photos_cost_a_bounded_number_of_lines(tmp_path, runner):
    folder = tmp_path / "photos"
    write_image(folder / "good.jpg", 0.5)
    for k in range(120):
        (folder / f"broken{k:03d}.jpg").write_bytes(b"not a jpeg")
    res = runner.invoke(app, ["rank", str(folder)])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("skipped:")]
    assert len(lines) <= 51 and "more problems like these" in res.stderr
    assert "skipped 120" in res.stderr  # the count is whole
