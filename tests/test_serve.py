"""`imagion serve`: the upload page over real HTTP on the loopback interface."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from imagion.inference.serve import MAX_FILES, make_server
from tests.conftest import write_image


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def server(trained):
    _, ckpt = trained
    srv = make_server("127.0.0.1", 0, model=ckpt, device="cpu")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _post(url: str, files: list[tuple[str, bytes]], accept: str = "application/json"):
    body, ctype = _multipart(files)
    req = urllib.request.Request(
        url + "/score", data=body, headers={"Content-Type": ctype, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_page_scores_uploads_best_first(server, tmp_path):
    with urllib.request.urlopen(server + "/", timeout=10) as resp:
        page = resp.read().decode()
    assert resp.status == 200 and 'type="file"' in page and "multiple" in page
    files = [
        (f"p{b}.jpg", write_image(tmp_path / f"p{b}.jpg", b / 10, size=64).read_bytes())
        for b in (2, 8, 5)
    ]
    files.append(("broken.jpg", b"\xff\xd8 not really"))
    status, text = _post(server, files)
    data = json.loads(text)
    assert status == 200 and [r["file"] for r in data["results"]] == ["p8.jpg", "p5.jpg", "p2.jpg"]
    assert all(0 <= r["score"] <= 10 and r["suggestion"] for r in data["results"])
    assert len(data["problems"]) == 1 and data["problems"][0].startswith("broken.jpg")
    status, html_page = _post(server, files[:2], accept="text/html")
    assert status == 200 and "#1 p8.jpg" in html_page and "data:image/jpeg;base64," in html_page


def test_too_many_files_and_empty_upload(server, tmp_path):
    one = write_image(tmp_path / "a.jpg", 0.5, size=32).read_bytes()
    status, text = _post(server, [(f"a{k}.jpg", one) for k in range(MAX_FILES + 1)])
    assert status == 400 and "at most 5" in json.loads(text)["error"]
    status, text = _post(server, [])
    assert status == 400 and "no picture" in json.loads(text)["error"]


def test_cli_serve_port_in_use(runner, trained):
    import socket

    from imagion.cli import app

    _, ckpt = trained
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = runner.invoke(app, ["serve", "--port", str(port), "--model", str(Path(ckpt))])
    assert res.exit_code == 1 and "cannot listen" in res.stderr
