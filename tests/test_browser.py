"""The upload page in a real browser: Playwright drives Debian's Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.serve_helpers import jpeg_bytes, live_server

pytestmark = pytest.mark.slow  # a real browser: `pytest -m "not slow"` leaves it out

CHROMIUM = os.environ.get("IMAGION_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _photos(folder: Path, n: int) -> list[str]:
    folder.mkdir(exist_ok=True)
    shapes = [(64, 64), (120, 60), (60, 120), (200, 100), (80, 80), (90, 90)]
    paths = []
    for k in range(n):
        p = folder / f"photo{k}.jpg"
        p.write_bytes(jpeg_bytes(0.1 + 0.15 * k, size=shapes[k % len(shapes)], seed=k))
        paths.append(str(p))
    return paths


def test_page_scores_five_pictures_best_first(browser, trained, tmp_path):
    with live_server(trained[1]) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        page.goto(url)
        page.set_input_files("input[type=file]", _photos(tmp_path / "five", 5))
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        cards = page.locator(".card")
        assert cards.count() == 5
        # each score card: the score, then its 80% range ("5.6\n2.1–9.4")
        scores = [float(t.split()[0]) for t in page.locator(".card .score").all_inner_texts()]
        assert scores == sorted(scores, reverse=True)
        names = page.locator(".card b").all_inner_texts()
        assert names[0].endswith("photo4.jpg")  # the model learned brightness
        boxes = [cards.nth(k).locator("img").bounding_box() for k in range(5)]
        assert all(b and round(b["width"]) == 128 and round(b["height"]) == 128 for b in boxes)
        texts = [cards.nth(k).locator(".text").bounding_box() for k in range(5)]
        assert len({round(t["x"]) for t in texts if t}) == 1  # no card's text is shifted
        # advice on every card, or once above them all when it is the same for every picture
        tips = page.locator(".card .tip").all_inner_texts()
        assert all(t.strip() for t in tips) or page.locator(".advice").count() == 1
        assert page.locator(".caveat").count() == 1  # one caveat line, not one per card
        tips = page.locator(".card .tip").all_inner_texts()
        assert all("imagion" not in t and "`" not in t for t in tips)  # no CLI talk on the page
        page.screenshot(path=str(tmp_path / "serve-page.png"), full_page=True)
        # (docs/serve-page.png shows the sample photos with the bundled model: taken by hand)


def test_six_chosen_the_first_five_scored_with_previews_and_a_spinner(browser, trained, tmp_path):
    with live_server(trained[1]) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.set_input_files("input[type=file]", _photos(tmp_path / "six", 6))
        assert "6 chosen: the first 5 will be scored" in page.inner_text("#note")
        assert page.locator("#previews img").count() == 5
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 5
        assert "first 5 of the 6 pictures chosen were scored" in page.inner_text(".note")
        # dropped files go through the same path: previews, then the form
        page.goto(url)
        page.evaluate(
            """() => {
              const dt = new DataTransfer();
              for (const n of ['a.jpg', 'b.jpg']) dt.items.add(new File([new Uint8Array(8)], n, {type: 'image/jpeg'}));
              document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
            }"""
        )
        assert page.locator("#previews img").count() == 2
        assert page.evaluate("document.getElementById('files').files.length") == 2
        # while the server scores, the button is off and a spinner says so
        page.goto(url)
        page.evaluate(
            "document.getElementById('upload').addEventListener('submit', e => e.preventDefault())"
        )
        page.set_input_files("input[type=file]", _photos(tmp_path / "one", 1))
        assert page.locator("#busy").is_hidden()
        page.click("button[type=submit]")
        assert page.locator("#busy").is_visible() and page.locator("#go").is_disabled()


def test_page_at_1280_screenshot(browser, tmp_path):
    """The page as a desktop shows it, with the sample photos and the bundled model."""
    with live_server(None) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        samples = sorted(str(p) for p in (ROOT / "data" / "samples").glob("*.jpg"))
        page.set_input_files("input[type=file]", samples)
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == len(samples)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=str(tmp_path / "serve-page.png"), full_page=True)
        if os.environ.get("IMAGION_SCREENSHOT"):
            shutil.copy(tmp_path / "serve-page.png", ROOT / "docs" / "serve-page.png")


def test_api_docs_render_offline(browser, trained):
    """Swagger UI's assets come from the package: /docs renders with no network at all."""
    with live_server(trained[1]) as url:
        page = browser.new_page()
        external: list[str] = []
        page.on(
            "request",
            lambda r: external.append(r.url) if not r.url.startswith(url) else None,
        )
        page.goto(f"{url}/docs")
        page.wait_for_selector(".opblock", timeout=15_000)
        assert "/api/score" in page.inner_text("body")
        assert external == []


@pytest.mark.parametrize("width", [390, 360])
def test_page_fits_a_phone_screen(browser, trained, tmp_path, width):
    """At 390×844 and 360×780 (phones) the page never scrolls sideways; names stay whole lines."""
    with live_server(trained[1]) as url:
        page = browser.new_page(viewport={"width": width, "height": 844})
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # the form too
        page.goto(url)
        page.set_input_files("input[type=file]", _photos(tmp_path / "phone", 5))
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 5
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, scroll
        heights = {
            round(b["height"])
            for b in page.locator(".card b").evaluate_all(
                "els => els.map(e => e.getBoundingClientRect())"
            )
        }
        assert len(heights) == 1  # one line each: no name broken into fragments
        page.screenshot(path=str(tmp_path / "serve-page-390.png"), full_page=True)
        if os.environ.get("IMAGION_SCREENSHOT") and width == 390:
            shutil.copy(tmp_path / "serve-page-390.png", ROOT / "docs" / "serve-page-390.png")


def test_three_result_cards_in_a_phone_view(browser, tmp_path):
    """At 390×844, after scoring, the answer is in view: the heading, what the numbers mean and
    three whole result cards, each with its score and range (the bundled model)."""
    with live_server(None) as url:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(url)
        page.set_input_files("input[type=file]", _photos(tmp_path / "three", 5))
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        third = page.locator(".card").nth(2).bounding_box()
        heading = page.locator("#results").bounding_box()
        assert third is not None and heading is not None
        assert heading["y"] >= 0 and third["y"] + third["height"] <= 844
        assert page.locator(".card .range").count() == 5
