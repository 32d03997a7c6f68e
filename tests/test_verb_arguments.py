"""The Python verbs take one path as one path, and refuse a count that is not whole before
any scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

import imagion
from imagion.errors import OptionError
from tests.helpers import write_image


@pytest.fixture
def shoot(tmp_path) -> Path:
    for i in range(2):
        write_image(tmp_path / "shoot" / f"p{i}.jpg", 0.3 + 0.4 * i, size=48, seed=i)
    return tmp_path / "shoot"


def test_one_str_or_path_is_one_path(shoot, monkeypatch):
    monkeypatch.chdir(shoot.parent)
    for given in ("shoot", Path("shoot"), shoot):
        result = imagion.rank(given, suggest=False)
        assert sorted(r.path.name for r in result.items) == ["p0.jpg", "p1.jpg"]
        assert result.problems == []
    assert len(imagion.pick("shoot", 1)) == 1


@pytest.mark.parametrize("top", [2.5, True, 0, "3"])
def test_top_that_is_not_a_whole_number_is_refused_before_scoring(shoot, top):
    # a missing model would be the first error if `top` were checked after opening it
    with pytest.raises(OptionError) as e:
        imagion.rank([shoot], top=top, model=shoot / "missing.pt")
    assert e.value.option == "top"
