"""Nothing lost, round 2: races, the user's own files, special files and checkpoints that
unpack to more than any model needs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from imagion.cli import app
from imagion.errors import ImagionError
from tests.helpers import ROOT, scored_catalog, write_image


def test_score_reads_the_likes_inside_its_write_transaction(tmp_path, monkeypatch):
    """An import waits for score's write lock, so score cannot write scores from likes that
    changed between its read and its write (the mechanism of the race, tested directly)."""
    from imagion.catalog.scoring import score_catalog
    from imagion.catalog.store import Catalog

    db = scored_catalog(tmp_path, 2, 4)
    seen: list[bool] = []
    real = Catalog.frame

    def frame(self, *a, **k):
        seen.append(self.db.in_transaction)
        return real(self, *a, **k)

    monkeypatch.setattr(Catalog, "frame", frame)
    with Catalog(db) as cat:
        score_catalog(cat)
    assert seen == [True]


# --- the user's files are never replaced ------------------------------------------------------


@pytest.fixture
def three_photos(tmp_path) -> Path:
    src = tmp_path / "photos"
    for i, b in enumerate((0.2, 0.5, 0.8)):
        write_image(src / f"p{i}.jpg", b, size=48, seed=i)
    return src


def test_copy_to_never_replaces_a_file(runner, three_photos, tmp_path):
    dest = tmp_path / "picks"
    args = ["rank", str(three_photos), "--copy-to", str(dest), "--top", "1", "--no-suggest"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (first,) = dest.iterdir()
    first.write_bytes(b"the user's edited pick")
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in dest.iterdir())
    assert len(names) == 2 and first.read_bytes() == b"the user's edited pick"
    assert any(" (2)" in n for n in names)


def test_copy_to_the_ranked_folder_is_refused(runner, three_photos):
    before = sorted(three_photos.iterdir())
    for extra in ([], ["-r"]):
        res = runner.invoke(
            app, ["rank", str(three_photos), *extra, "--copy-to", str(three_photos)]
        )
        assert res.exit_code == 1 and "ranked from this folder" in res.output
    res = runner.invoke(
        app, ["rank", str(three_photos / "p0.jpg"), "--crops", str(three_photos / "x" / "..")]
    )
    assert res.exit_code == 1 and "--crops" in res.output
    assert sorted(three_photos.iterdir()) == before


def test_crops_of_two_photos_with_one_stem_both_kept(tmp_path):
    from PIL import Image

    from imagion.inference.crops import write_crop

    out = tmp_path / "crops"
    a = write_crop(out, Path("A/IMG.png"), None, Image.new("RGB", (8, 8), "red"))
    b = write_crop(out, Path("B/IMG.jpg"), None, Image.new("RGB", (8, 8), "blue"))
    assert a != b and a is not None and b is not None
    with Image.open(a) as ia, Image.open(b) as ib:
        assert ia.getpixel((4, 4))[0] > 200 and ib.getpixel((4, 4))[2] > 200


# --- special files never hang -------------------------------------------------------------------


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


# --- checkpoints that unpack to more than any model needs -------------------------------------


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


# --- user text is text: never Rich markup, never raw terminal codes ----------------------------


def test_user_text_is_not_markup_and_control_codes_are_shown(runner, tmp_path):
    import csv

    for name in ("a[x]b.jpg", "c.jpg", "d.jpg"):
        write_image(tmp_path / name, 0.4, seed=len(name))
    rows = [
        ["account", "image", "likes", "posted_at"],
        ["[/acct]", "a[x]b.jpg", "10", ""],
        ["[/acct]", "c.jpg", "20", "2017-01-01"],
        ["[/acct]", "d.jpg", "[/b]", "2017-01-02"],
    ]
    with open(tmp_path / "p.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    db = str(tmp_path / "c.db")
    res = runner.invoke(app, ["import", str(tmp_path / "p.csv"), "--catalog", db])
    assert res.exit_code == 0, res.output
    assert "[/b]" in res.output  # the refused value, shown as it is
    res = runner.invoke(app, ["posts", "--catalog", db])  # an undated post, an odd account
    assert res.exit_code == 0, res.output
    assert "[/acct]" in res.stdout and "a[x]b.jpg" in res.stdout
    from imagion.cli.console import visible

    assert visible("x\x1b[2Jy\x07") == "x\\x1b[2Jy\\x07"


def test_rank_shows_odd_file_names_as_they_are(runner, tmp_path, monkeypatch):
    write_image(tmp_path / "[bold red]b.jpg", 0.5)
    write_image(tmp_path / "a[x]b.jpg", 0.3)
    monkeypatch.chdir(tmp_path)  # short paths: the table does not fold them
    res = runner.invoke(app, ["rank", ".", "--no-suggest"])
    assert res.exit_code == 0, res.output
    assert "[bold red]b.jpg" in res.stdout and "a[x]b.jpg" in res.stdout


# --- every bad option value is one line and exit 1 ----------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--lr", "nan"],
        ["--lr", "1e300"],
        ["--lr", "inf"],
        ["--weight-decay", "-1"],
        ["--weight-decay", "nan"],
        ["--image-size", "100000"],
        ["--seed", "-1"],
        ["--patience", "0"],
        ["--batch-size", "-1"],
        ["--dropout", "1.5"],
        ["--tone-augment", "-1"],
    ],
)
def test_bad_training_values_are_one_line(runner, tmp_path, option):
    db = scored_catalog(tmp_path, 2, 4)
    for cmd in (["train", "--out", str(tmp_path / "run")], ["eval", "--cv", "2"]):
        res = runner.invoke(app, [*cmd, "--catalog", str(db), *option])
        assert res.exit_code == 1, res.output
        assert res.output.count("error:") == 1 and option[0] in res.output
    assert not (tmp_path / "run" / "best.pt").exists()


def test_bad_counts_are_one_line(runner, tmp_path):
    db = scored_catalog(tmp_path, 2, 4)
    res = runner.invoke(app, ["rank", str(tmp_path / "ig"), "-r", "--top", "-2"])
    assert res.exit_code == 1 and "--top -2" in res.output
    res = runner.invoke(app, ["labels", "--catalog", str(db), "--min-support", "-5"])
    assert res.exit_code == 1 and "--min-support -5" in res.output


def test_resume_with_another_recipe_is_refused(runner, tmp_path):
    db = scored_catalog(tmp_path, 3, 4)
    base = ["train", "--catalog", str(db), "--out", str(tmp_path / "run"), "--image-size", "64"]
    res = runner.invoke(app, [*base, "--epochs", "1", "--val-fraction", "0.34"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--epochs", "2", "--resume", "--lr", "0.01"])
    assert res.exit_code == 1 and "--lr 0.001" in res.output


# --- a slow client holds a connection, never a scoring slot -----------------------------------


def test_a_dripping_upload_takes_no_scoring_slot():
    import asyncio

    from starlette.requests import Request

    from imagion.serve.app import Service
    from imagion.serve.limits import Limits

    limits = Limits(max_scoring=1)
    service = Service(scorer=None, limits=limits)  # type: ignore[arg-type]  # never reached

    async def run() -> int:
        never = asyncio.Event()

        async def receive():
            await never.wait()  # the rest of the body never comes
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/score",
            "headers": [(b"content-type", b"multipart/form-data; boundary=x")],
        }
        task = asyncio.create_task(service.score(Request(scope, receive)))
        await asyncio.sleep(0.2)
        free = service.slots._value
        task.cancel()
        return free

    assert asyncio.run(run()) == 1


def test_the_whole_body_has_a_deadline():
    import asyncio
    import time

    from imagion.serve.limits import Limits
    from imagion.serve.middleware import BodyLimit

    async def app_reads_all(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    limits = Limits(body_timeout_s=5, body_deadline_s=0.4)
    sent: list[dict] = []

    async def drip():
        await asyncio.sleep(0.05)  # one byte at a time, each well within body_timeout_s
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message):
        sent.append(message)

    start = time.monotonic()
    asyncio.run(BodyLimit(app_reads_all, limits)({"type": "http", "headers": []}, drip, send))
    assert time.monotonic() - start < 2
    assert sent[0]["status"] == 408 and b"longer than 0.4 s" in sent[1]["body"]


# --- only photo formats are decoded; odd dates; unreadable folders; damaged caches -------------


def test_an_eps_named_jpg_is_never_decoded(tmp_path):
    from imagion.images import load_square, open_image

    eps = tmp_path / "x.jpg"
    eps.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
    )
    with pytest.raises(ImagionError, match="not a photo"):
        open_image(eps)
    with pytest.raises(ImagionError, match="not a photo"):
        load_square(eps.read_bytes(), 32, name="upload.jpg")


def test_iso_basic_date_is_that_day():
    from imagion.catalog.values import time_value

    assert time_value("20200101") == 1577836800
    assert time_value(20200101) == 1577836800
    assert time_value("1600000000") == 1600000000  # ten digits: seconds, as before
    # a date's shape but no real day: refused, not stored as a day of 1970
    for bad in ("20201340", "20200230", 20201399):
        with pytest.raises(ValueError, match="not a date"):
            time_value(bad)


def test_an_unreadable_folder_costs_its_own_files_only(tmp_path, monkeypatch, runner):
    from imagion.files import walk_files

    good, locked = tmp_path / "good", tmp_path / "locked"
    write_image(good / "a.jpg", 0.3)
    write_image(locked / "b.jpg", 0.6)
    real = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, problems = walk_files(tmp_path)
    assert files == [good / "a.jpg"]
    assert len(problems) == 1 and "locked" in problems[0] and "Permission denied" in problems[0]
    res = runner.invoke(app, ["rank", str(tmp_path), "-r", "--no-suggest", "--json"])
    assert res.exit_code == 0, res.output
    assert [Path(r["path"]).name for r in json.loads(res.stdout)] == ["a.jpg"]
    assert "locked" in res.stderr


def test_a_feature_cache_entry_of_the_wrong_shape_is_rebuilt(tmp_path):
    import numpy as np

    from imagion.models.caches import feature_folder, frozen_features
    from imagion.models.registry import build_model

    photo = write_image(tmp_path / "p.jpg", 0.5)
    model = build_model("effnet-lite0", image_size=64).eval()
    folder = feature_folder(model, tmp_path)
    folder.mkdir(parents=True)
    np.save(folder / f"{'c' * 64}.npy", np.zeros((7, 3), dtype=np.float32))
    feats = frozen_features(model, [str(photo)], ["c" * 64], tmp_path, torch.device("cpu"))
    assert feats.ok.all() and feats.x.shape == (1, 1280) and float(feats.x.abs().sum()) > 0
    assert np.load(folder / f"{'c' * 64}.npy").shape == (1280,)


def test_sigterm_is_handled_as_ctrl_c_while_labelling():
    import signal

    from imagion.cli.console import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.5) if hasattr(signal, "sigtimedwait") else None
    assert signal.getsignal(signal.SIGTERM) == before


def test_outputs_that_are_folders_are_refused_before_the_work(runner, trained, tmp_path):
    db, ckpt = trained
    folder = tmp_path / "out.csv"
    folder.mkdir()
    res = runner.invoke(
        app, ["eval", "--catalog", str(db), "--model", str(ckpt), "--pairs-out", str(folder)]
    )
    assert res.exit_code == 1 and "is a folder" in res.output
    stats = tmp_path / "stats.json"
    stats.mkdir()
    res = runner.invoke(app, ["labels", "--catalog", str(db), "--save-stats", str(stats)])
    assert res.exit_code == 1 and "is a folder" in res.output and "labelled" not in res.output


def test_the_sheet_is_capped(tmp_path, monkeypatch):
    from imagion.inference import sheet
    from imagion.inference.rank import Ranked

    monkeypatch.setattr(sheet, "MAX_SHEET", 3)
    items = [
        Ranked(path=write_image(tmp_path / f"p{k}.jpg", 0.1 * k, seed=k), score=5.0, raw=0.0)
        for k in range(6)
    ]
    out = sheet.write_sheet(items, tmp_path / "s.html", "t")
    assert out.read_text().count("<figure>") == 3


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


def test_csv_with_a_huge_line_and_a_semicolon_csv(tmp_path, monkeypatch):
    from imagion.catalog import formats

    monkeypatch.setattr(formats, "MAX_CSV_LINE", 1000)
    write_image(tmp_path / "a.jpg", 0.4)
    (tmp_path / "long.csv").write_text(
        "account,image,likes,posted_at\nx,a.jpg,10,2020-01-01\n" + "y" * 5000, encoding="utf-8"
    )
    problems: list[str] = []
    long = tmp_path / "long.csv"
    posts = formats.parse_csv(long, *formats.csv_table(long, problems), problems)
    assert len(posts) == 1 and any("longer than 1,000 characters" in p for p in problems)
    (tmp_path / "semi.csv").write_text(
        "account;image;likes;posted_at\nx;a.jpg;12;2020-01-01\n", encoding="utf-8"
    )
    problems = []
    semi = tmp_path / "semi.csv"
    posts = formats.parse_csv(semi, *formats.csv_table(semi, problems), problems)
    assert [p.likes for p in posts] == [12] and not problems


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


def test_serve_names_empty_files_and_cut_bodies_and_caps_full_decodes(trained, tmp_path):
    from fastapi.testclient import TestClient
    from PIL import Image

    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app
    from tests.serve_helpers import jpeg_bytes, multipart

    _, ckpt = trained
    app_, scorer = build_app(str(ckpt), "cpu", Limits(max_full_pixels=10_000), False)
    try:
        client = TestClient(app_)
        body, ctype = multipart([("a.jpg", jpeg_bytes(0.5)), ("empty.jpg", b"")])
        res = client.post("/api/score", content=body, headers={"content-type": ctype})
        assert res.status_code == 200 and any("empty.jpg" in p for p in res.json()["problems"])
        one, one_type = multipart([("a.jpg", jpeg_bytes(0.5))])
        cut = one[: one.rindex(b"\r\n--")]  # the picture's bytes, then nothing: no closing line
        res = client.post("/api/score", content=cut, headers={"content-type": one_type})
        assert res.status_code == 400 and "closing boundary" in res.json()["error"]
        png = io.BytesIO()
        Image.new("RGB", (200, 200), "red").save(png, format="PNG")  # 40,000 px > 10,000
        body, ctype = multipart([("big.png", png.getvalue()), ("a.jpg", jpeg_bytes(0.4))])
        res = client.post("/api/score", content=body, headers={"content-type": ctype})
        assert res.status_code == 200
        assert any("big.png" in p and "JPEG" in p for p in res.json()["problems"])
        upper = body.replace(b"", b"")
        res = client.post(
            "/api/score",
            content=upper,
            headers={"content-type": ctype.replace("multipart/form-data", "Multipart/Form-Data")},
        )
        assert res.status_code == 200
    finally:
        scorer.close()


def test_all_equal_likes_do_not_say_run_score(runner, tmp_path):
    import csv as csv_

    rows = [["account", "image", "likes", "posted_at"]]
    for k in range(4):
        write_image(tmp_path / f"p{k}.jpg", 0.2 * k + 0.1, seed=k)
        rows.append(["a", f"p{k}.jpg", "50", f"2020-01-0{k + 1}"])
    with open(tmp_path / "p.csv", "w", newline="") as f:
        csv_.writer(f).writerows(rows)
    db = str(tmp_path / "c.db")
    runner.invoke(app, ["import", str(tmp_path / "p.csv"), "--catalog", db])
    res = runner.invoke(app, ["train", "--catalog", db, "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "run `imagion score` first" in res.output
    runner.invoke(app, ["score", "--catalog", db])
    res = runner.invoke(app, ["train", "--catalog", db, "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "ran but could score no post" in res.output


def test_a_client_leaving_mid_upload_is_one_answer_not_a_traceback():
    import asyncio

    from starlette.requests import Request

    from imagion.serve.app import ServeError, Service
    from imagion.serve.limits import Limits

    service = Service(scorer=None, limits=Limits())  # type: ignore[arg-type]

    async def run() -> ServeError:
        calls = 0

        async def receive():
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b"--x\r\n", "more_body": True}
            return {"type": "http.disconnect"}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/score",
            "headers": [(b"content-type", b"multipart/form-data; boundary=x")],
        }
        try:
            await service.score(Request(scope, receive))
        except ServeError as exc:
            return exc
        raise AssertionError("no error")

    assert "cut off by the client" in asyncio.run(run()).message


def test_ipv6_serve_address_is_a_valid_url():
    from imagion.serve import runner

    lines: list[str] = []

    def fake_bind(host, port):
        class Sock:
            def getsockname(self):
                return (host, 8123)

            def close(self):
                pass

        return Sock()

    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "bind", fake_bind)
    mp.setattr(
        runner, "build_app", lambda *a, **k: (object(), type("S", (), {"close": lambda s: None})())
    )
    mp.setattr(
        runner, "make_server", lambda app, limits: type("V", (), {"run": lambda s, sockets: None})()
    )
    try:
        runner.serve("::", 0, log=lines.append)
    finally:
        mp.undo()
    assert any("http://[::]:8123/" in line for line in lines), lines
