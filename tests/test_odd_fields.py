"""Odd values in fields nobody checks by eye (issue #35): EXIF sub-seconds such as "1²" ('²'
is a digit to str.isdigit) and the server's `chosen` form field ("²", 5,000 digits)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from imagion.cli import app
from imagion.images import capture_time
from imagion.serve.limits import Limits
from imagion.serve.runner import build_app
from tests.damaged_images import with_capture_time
from tests.serve_helpers import jpeg_bytes, multipart

ODD = ("1²", "²", "٣", "5" * 5000, "12\x0034", " 7 ")


def test_odd_subseconds_are_ignored_not_a_crash():
    base = capture_time(io.BytesIO(with_capture_time("2024:05:01 10:00:00", "")))
    assert base is not None
    assert capture_time(io.BytesIO(with_capture_time("2024:05:01 10:00:00", "25"))) == base + 0.25
    for sub in ODD:
        got = capture_time(io.BytesIO(with_capture_time("2024:05:01 10:00:00", sub)))
        assert got is not None and base <= got < base + 1, sub


def _shots(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for k, sub in enumerate(ODD[:3]):
        (folder / f"s{k}.jpg").write_bytes(with_capture_time("2024:05:01 10:00:0" + str(k), sub, k))
    return folder


def test_pick_and_groups_with_odd_subseconds(tmp_path, runner):
    folder = _shots(tmp_path)
    for cmd in (["pick", str(folder), "-n", "2", "--json"], ["rank", str(folder), "--groups"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, (cmd, res.output)


@pytest.fixture(scope="module")
def client():
    served, scorer = build_app(None, "cpu", Limits())
    with TestClient(served) as c:
        yield c
    scorer.close()


def _post(client, path, files, fields=()):
    body, ctype = multipart(files)
    extra = b"".join(
        f'--{ctype.split("=")[1]}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields
    )
    return client.post(path, content=extra + body, headers={"Content-Type": ctype})


def test_server_pick_with_odd_subseconds(client, tmp_path):
    files = [
        (f"s{k}.jpg", with_capture_time("2024:05:01 10:00:00", s, k)) for k, s in enumerate(ODD)
    ]
    for path in ("/api/pick", "/pick"):
        res = _post(client, path, files)
        assert res.status_code == 200, (path, res.text[:300])


@pytest.mark.parametrize("chosen", ["²", "1²", "5" * 5000, "-3", "1e3"])
def test_odd_chosen_field_is_a_400_not_a_500(client, chosen):
    files = [("a.jpg", jpeg_bytes(0.4))]
    res = _post(client, "/api/score", files, [("chosen", chosen)])
    assert res.status_code == 400, res.text[:300]
    assert "`chosen`" in res.json()["error"]
    res = _post(client, "/", files, [("chosen", chosen)])
    assert res.status_code == 400 and "chosen" in res.text


def test_chosen_still_notes_what_was_left_out(client):
    res = _post(client, "/api/score", [("a.jpg", jpeg_bytes(0.4))], [("chosen", "7")])
    assert res.status_code == 200 and any("of the 7" in n for n in res.json()["notes"])
    res = _post(client, "/api/score", [("a.jpg", jpeg_bytes(0.4))], [("chosen", "")])
    assert res.status_code == 200 and not res.json()["notes"]
