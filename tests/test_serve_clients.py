"""The server and its clients: slow or leaving clients hold a connection, never a scoring slot; empty files and cut bodies are said."""

from __future__ import annotations

import io

import pytest


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
