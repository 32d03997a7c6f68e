"""How a 0–10 image score is written for a person: one rule, so a photo is the same number in
the table, on the contact sheet, on the page and in crop advice."""

from __future__ import annotations

JSON_DIGITS = 4  # scores in --json and the API are rounded to this many decimals (1e-4)


def score_text(score: object) -> str:
    """One decimal, half up, from the value `--json` shows (rounded to JSON_DIGITS first), so
    the table, the JSON, the sheet and the page never disagree: 5.54996 is 5.55 in JSON and "5.6"
    everywhere, 5.5449 is 5.5449 and "5.5"."""
    value = round(float(score), JSON_DIGITS)  # type: ignore[arg-type]
    return f"{value + 1e-9:.1f}"
