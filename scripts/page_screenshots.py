"""Screenshots of the upload page for the docs: the five demo photos scored by the bundled model,
at 1280 px and in a phone's 390×844 view (docs/serve-page.png, docs/serve-page-390.png).

    python scripts/page_screenshots.py            # needs Debian's chromium and the dev layer
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

from imagion.serve.runner import serving_in_thread

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "data" / "samples").glob("*.jpg"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    chromium = os.environ.get("IMAGION_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with serving_in_thread(None) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
        for width, height, name in (
            (1280, 900, "serve-page.png"),
            (390, 844, "serve-page-390.png"),
        ):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            page.set_input_files("input[type=file]", [str(p) for p in PHOTOS])
            page.click("button[type=submit]")
            page.wait_for_selector(".card")
            page.locator("#results").scroll_into_view_if_needed()
            full = width > 400  # the phone view shows what a person sees after scoring
            page.screenshot(path=str(ROOT / "docs" / name), full_page=full)
            print(f"wrote docs/{name}")
        browser.close()


if __name__ == "__main__":
    main()
