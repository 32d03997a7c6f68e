"""Clipped highlights (issue #34): a photo is flagged only by its own measures, and a group's lead
counts clipping at each shot's own top — a copy dimmed from a clipped photo keeps its flat top
(the same highlights lost), a brightened copy clipped anew gains one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from imagion.cli import app
from imagion.inference.groups import lead
from imagion.inference.quality import CLIPPED, Quality, pixel_measures
from imagion.inference.rank import Ranked
from imagion.models.transforms import Calibration
from tests.helpers import dataset
from tests.test_quality import photo


def shot(name: str, raw: float, clipped: float, at_top: float, bright: float = 0.6) -> Ranked:
    q = Quality(1.3, bright, 1.0, clipped, 1080, 1080, 85, [], at_top=at_top)
    return Ranked(Path(name), 5.0, raw, quality=q)


def cal() -> Calibration:
    return Calibration(list(np.linspace(-1, 1, 101)), pair_scale=1.0, pair_source="test")


def test_at_top_is_the_flat_top_of_the_range_wherever_it_lies():
    white = np.full((1, 64, 64, 3), 255, np.uint8)
    white[:, :, :32] = np.asarray(photo(1).resize((32, 64)))[None]
    dimmed = (white.astype(np.float32) * 0.7).astype(np.uint8)
    top_white, top_dimmed = pixel_measures(white)[0, 4], pixel_measures(dimmed)[0, 4]
    assert top_white >= 0.5 and abs(top_white - top_dimmed) < 0.01  # the same flat top
    plain = np.asarray(photo(2).resize((64, 64)))[None]
    assert pixel_measures(plain)[0, 4] < 0.05


def test_a_dimmed_copy_does_not_win_for_fewer_clipped_highlights():
    """The original is the likes model's favourite; a copy dimmed to 85% clips 0% at ≥ 250 of
    255 but keeps the original's flat top: it is no better, the favourite stays first."""
    original = shot("original.jpg", 0.02, clipped=0.15, at_top=0.15)
    dimmed = shot("dimmed.jpg", 0.0, clipped=0.0, at_top=0.15, bright=0.5)
    order, why = lead([original, dimmed], cal())
    assert order[0].path.name == "original.jpg" and why is None


def test_a_brightened_copy_loses_to_its_original_for_its_clipped_highlights():
    brighter = shot("brighter.jpg", 0.02, clipped=0.12, at_top=0.12, bright=0.75)
    original = shot("original.jpg", 0.0, clipped=0.0, at_top=0.001)
    order, why = lead([brighter, original], cal())
    assert order[0].path.name == "original.jpg"
    assert why is not None and why.startswith("the one with the fewest clipped highlights of 2")


def test_nan_measures_from_a_table_do_not_break_the_lead():
    nan = Quality(float("nan"), 0.5, 0.9, float("nan"), 1080, 1080, 85, [], at_top=float("nan"))
    order, _ = lead(
        [Ranked(Path("a.jpg"), 5.0, 0.02, quality=nan), shot("b.jpg", 0.0, 0, 0)], cal()
    )
    assert {s.path.name for s in order} == {"a.jpg", "b.jpg"}


def test_rank_flags_clipping_by_the_photo_alone(runner, tmp_path: Path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    big = photo(5).resize((900, 900))
    big.save(folder / "original.jpg", quality=90)
    ImageEnhance.Brightness(big).enhance(1.45).save(folder / "brighter.jpg", quality=90)
    ImageEnhance.Brightness(big).enhance(3.5).save(folder / "blown.jpg", quality=90)
    res = runner.invoke(app, ["rank", str(folder), "--json", "--no-index"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r["quality"] for r in json.loads(res.stdout)}
    assert rows["original.jpg"]["flags"] == [] and rows["brighter.jpg"]["flags"] == []
    assert rows["blown.jpg"]["flags"] == ["highlights clipped"]
    assert rows["blown.jpg"]["clipped"] > CLIPPED > rows["brighter.jpg"]["clipped"]
    assert rows["brighter.jpg"]["at_top"] > rows["original.jpg"]["at_top"]


def test_real_photos_dimmed_or_cropped_flag_nothing_and_pick_keeps_the_original(tmp_path: Path):
    """A photo with a white frame beside copies dimmed to 85–95% and crops of it (a review found
    the original flagged beside them, and pick handing over a dimmed copy)."""
    import imagion

    src = next(p for p in sorted(dataset("ig-celeb12").glob("*/*.jpg")) if _white_share(p) > 0.2)
    (tmp_path / "original.jpg").write_bytes(src.read_bytes())
    with Image.open(src) as im:
        rgb = im.convert("RGB")
    for f in (0.85, 0.9, 0.95):
        ImageEnhance.Brightness(rgb).enhance(f).save(tmp_path / f"dim{f}.jpg", quality=92)
    w, h = rgb.size
    for c in (0.03, 0.06):
        box = (int(w * c), int(h * c), int(w * (1 - c)), int(h * (1 - c)))
        rgb.crop(box).save(tmp_path / f"crop{c}.jpg", quality=92)
    ranked = imagion.rank(tmp_path, index=False, suggest=False)
    flagged = {r.path.name for r in ranked if r.quality and "highlights clipped" in r.quality.flags}
    assert flagged == set(), flagged
    picked = imagion.pick(tmp_path, n=1, index=False)[0].photo
    original = next(r for r in ranked if r.path.name == "original.jpg")
    assert picked.quality is not None and original.quality is not None
    step = [int(q.at_top / 0.02) for q in (picked.quality, original.quality)]
    assert picked.path.name == "original.jpg" or step[0] == step[1], (picked.path.name, step)


def _white_share(path: Path) -> float:
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L").resize((64, 64)))
    return float((grey >= 250).mean())
