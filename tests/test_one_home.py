"""One home per rule: limits, defaults and thresholds appear in text only through their
constants (the page, the API's schema, --help and the notes follow the constant)."""

from __future__ import annotations

import re

from tests.helpers import ROOT

WRITTEN_OUT = re.compile(r"\b(55|60|65)%|\b1 to (5|50)\b|\bup to (5|50) pictures")


def test_no_threshold_or_limit_is_written_out_in_the_code():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in (ROOT / "imagion").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WRITTEN_OUT.search(line)
    ]
    assert found == []


def test_the_server_says_its_own_limits():
    from fastapi.testclient import TestClient

    from imagion.inference.pick import PICK_N
    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app

    app_, scorer = build_app(None, "cpu", Limits(max_files=7, max_pick_files=31), False)
    try:
        client = TestClient(app_)
        spec = client.get("/openapi.json").json()["paths"]
        assert "1 to 7" in spec["/api/score"]["post"]["summary"]
        pick = spec["/api/pick"]["post"]["requestBody"]["content"]["multipart/form-data"]
        props = pick["schema"]["properties"]
        assert "1 to 31" in props["images"]["description"]
        assert props["n"]["default"] == PICK_N
        assert "Up to 7 pictures" in client.get("/").text
        page = client.get("/pick").text
        assert "Up to 31 pictures" in page and "Score up to 7 pictures" in page
        assert f'name="n" value="{PICK_N}"' in page
    finally:
        scorer.close()


def test_the_odds_rule_is_written_from_its_thresholds(monkeypatch):
    from imagion import scores

    assert f"under {scores.TOSS_UP:.0%} a toss-up" in scores.ODDS_RULE
    assert f"{scores.SOMEWHAT:.0%} somewhat more likely" in scores.ODDS_RULE
    assert scores.ODDS_RULE in scores.NEXT_MEANING
    assert scores.odds_words(scores.SOMEWHAT - 0.001) == "somewhat more likely"
    assert scores.odds_words(scores.SOMEWHAT) == "likely"
