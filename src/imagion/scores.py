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


def range_text(low: object, high: object) -> str:
    """An 80% interval as the table shows it: "2.1–8.7"."""
    return f"{score_text(low)}–{score_text(high)}"


def shown_score(score: object, low: object = None, high: object = None) -> str:
    """ "5.6 (2.1–8.7)", or "5.6" without an interval: the one way a score is written."""
    if low is None or high is None:
        return score_text(score)
    return f"{score_text(score)} ({range_text(low, high)})"


TOSS_UP = 0.55  # a win probability below this is worded as a toss-up
SOMEWHAT = 0.65  # … below this "somewhat more likely", above it "likely"
# the rule in words, written from the two thresholds (the CLI, the page and the docs say it)
ODDS_RULE = (
    f"under {TOSS_UP:.0%} a toss-up, {TOSS_UP * 100:.0f}–{SOMEWHAT:.0%} somewhat more likely, "
    "above that likely"
)


def odds_words(p: float) -> str:
    """How sure a win probability is, in words: below TOSS_UP a toss-up, below SOMEWHAT
    somewhat more likely, above that likely (the same words in the CLI, the page and the docs)."""
    p = max(p, 1 - p)
    if p < TOSS_UP:
        return "a toss-up"
    if p < SOMEWHAT:
        return "somewhat more likely"
    return "likely"


def score_meaning(no_interval: str | None) -> list[str]:
    """The sentences under a table of scores: what the score and its range mean, or why there
    is no range."""
    if no_interval:
        return [PERCENTILE_MEANING, no_interval + "."]
    return [SCORE_MEANING, RANGE_MEANING]


# One plain sentence per number, where it is printed (rank, compare, the page, --help, /docs).
SCORE_MEANING = (
    "Score: the 0–10 score this photo's likes would most likely get in its account "
    "(5 = a typical post, 10 = the account's best)."
)
PERCENTILE_MEANING = (
    "Score: where the model places the photo among the posts it trained on (5 = the middle); "
    "it is not a prediction of likes."
)
RANGE_MEANING = (
    "The range in brackets: 8 in 10 photos the model scored like this one got a score "
    "inside it; a wide range means the model cannot tell much."
)
EQUAL_SHOWN = (
    "=: the two scores are equal at one decimal but the model's outputs differ; P(> next) "
    "compares those outputs."
)
NEXT_MEANING = (
    f"P(> next): how likely a photo gets more likes than the next one down — {ODDS_RULE}. It "
    "compares the model's own outputs, so two photos whose rounded scores look alike can still "
    "differ."
)
