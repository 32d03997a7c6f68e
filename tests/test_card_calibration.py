"""A hand-edited checkpoint card (issue #35): its calibration's shape and order are checked when
the card is read (CheckpointError naming the file and the field), and a score is never shown
outside its own range or outside 0–10."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from imagion.cli import app
from imagion.errors import CheckpointError
from imagion.models.card import CheckpointCard
from imagion.models.checkpoints import read_checkpoint
from imagion.models.expected_score import ScoreModel
from imagion.settings import bundled_model_path
from tests.helpers import write_image


@pytest.fixture(scope="module")
def bundled() -> dict:
    return read_checkpoint(bundled_model_path())


def _swap(e: dict) -> None:
    e["low"], e["high"] = e["high"], e["low"]


def _reverse(e: dict) -> None:
    e["mean"] = e["mean"][::-1]


def _times_ten(e: dict) -> None:
    e["mean"] = [10 * v for v in e["mean"]]


def _out_of_range(e: dict) -> None:
    e["low"], e["high"] = [-5.0] * len(e["low"]), [99.0] * len(e["high"])


def _booleans(e: dict) -> None:
    e["knots"] = [True] * len(e["knots"])


EDITS = {
    "low and high swapped": (_swap, "low ≤ mean ≤ high"),
    "mean reversed": (_reverse, "mean is not non-decreasing"),
    "mean ×10": (_times_ten, "mean is outside 0–10"),
    "range -5 to 99": (_out_of_range, "outside 0–10"),
    "booleans": (_booleans, "knots is not a list of numbers"),
}


@pytest.mark.parametrize("case", EDITS, ids=list(EDITS))
def test_an_edited_expected_score_is_refused_naming_file_and_field(bundled, case):
    edit, needle = EDITS[case]
    card = copy.deepcopy(bundled)
    edit(card["calibration"]["expected_score"])
    with pytest.raises(CheckpointError) as err:
        CheckpointCard.from_dict(card, "edited.pt")
    assert "edited.pt" in str(err.value) and needle in str(err.value)


def test_boolean_quantiles_and_pair_scale_are_refused(bundled):
    for field, value in (("raw_quantiles", [False, True]), ("pair_scale", True)):
        card = copy.deepcopy(bundled)
        card["calibration"][field] = value
        with pytest.raises(CheckpointError, match=field):
            CheckpointCard.from_dict(card, "edited.pt")


def test_quantiles_of_another_length_still_score(bundled):
    card = copy.deepcopy(bundled)
    q = card["calibration"]["raw_quantiles"]
    card["calibration"]["raw_quantiles"] = q[::4]  # 26 numbers, not 101
    cal = CheckpointCard.from_dict(card, "edited.pt").calibration
    scores = cal.score(np.array([-3.0, 0.0, 3.0]))
    low, high = cal.interval(np.array([-3.0, 0.0, 3.0]))
    assert np.all(np.diff(scores) >= 0) and np.all((low <= scores) & (scores <= high))


def test_a_score_is_never_shown_outside_its_range_or_0_to_10():
    model = ScoreModel(
        knots=[0.0, 1.0], mean=[-2.0, 12.0], low=[1.0, 9.5], high=[0.5, 11.0], posts=0, source="x"
    )
    mean, low, high = model.predict(np.linspace(0, 1, 11))
    assert np.all((low >= 0) & (low <= mean) & (mean <= high) & (high <= 10))


def test_fitted_models_always_pass_the_check():
    rng = np.random.default_rng(3)
    for n in (4, 13, 250):
        u, y = rng.random(n), np.clip(rng.normal(5, 2, n), 0, 10)
        ScoreModel.from_dict(ScoreModel.fit(u, y, "test").to_dict())


def test_rank_with_an_edited_card_is_one_error_line(bundled, tmp_path, runner):
    import torch

    card = copy.deepcopy(bundled)
    _swap(card["calibration"]["expected_score"])
    torch.save(card, tmp_path / "edited.pt")
    image = write_image(tmp_path / "a.jpg", 0.5)
    res = runner.invoke(app, ["rank", str(image), "--model", str(tmp_path / "edited.pt")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.startswith("error:") and "edited.pt" in res.output
