"""Technical quality (issue #34): each flag on tiny generated images, the thresholds' documented
source, and the rule that a flawed favourite does not beat an unflawed near-copy on a toss-up."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from imagion.inference import quality
from imagion.inference.groups import CONFIDENT, Group, lead
from imagion.inference.quality import assess, header_facts, jpeg_quality, pixel_measures
from imagion.inference.rank import Ranked
from imagion.models.transforms import Calibration
from tests.helpers import ROOT

SIZE = 224


def photo(seed: int = 0) -> Image.Image:
    """A photo-like picture: soft shapes with a sharp edge and some fine texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = 90 + 60 * np.sin(x / 17.0) * np.cos(y / 23.0)
    for _ in range(12):
        cx, cy = rng.integers(20, SIZE - 20, 2).tolist()
        r = int(rng.integers(8, 30))
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(40, 210)
    img += rng.normal(0, 6, img.shape)
    rgb = np.stack([img, img * 0.9 + 10, img * 0.8 + 20], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def measured(im: Image.Image) -> np.ndarray:
    return pixel_measures(np.asarray(im.convert("RGB"), dtype=np.uint8)[None])[0]


def flags(im: Image.Image, facts: tuple[int, int, int | None] = (1080, 1080, 90)) -> list[str]:
    return assess(measured(im), facts).flags


def test_an_ordinary_photo_has_no_flag():
    assert flags(photo()) == []


def test_blurry():
    assert flags(photo().filter(ImageFilter.GaussianBlur(2.5))) == ["blurry"]


def test_a_dark_photo_is_too_dark_but_not_blurry():
    dark = Image.fromarray((np.asarray(photo(), dtype=np.float32) * 0.4).astype(np.uint8))
    assert flags(dark) == ["too dark"]


def test_highlights_clipped():
    a = np.asarray(photo(), dtype=np.float32) * 3.5
    assert flags(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))) == ["highlights clipped"]


def test_low_resolution_and_heavily_compressed_from_the_header(tmp_path: Path):
    small = tmp_path / "small.jpg"
    photo().save(small, quality=95)
    w, h, q = header_facts(small)
    assert (w, h) == (SIZE, SIZE) and q is not None and q >= 90
    assert flags(photo(), (w, h, q)) == ["low resolution"]
    squeezed = tmp_path / "q30.jpg"
    photo().resize((900, 900)).save(squeezed, quality=30)
    facts = header_facts(squeezed)
    assert facts[2] == 30
    assert flags(photo(), facts) == ["heavily compressed"]
    png = tmp_path / "p.png"
    photo().resize((900, 900)).save(png)
    assert header_facts(png) == (900, 900, None)


def test_the_size_is_the_shown_size_of_a_turned_photo(tmp_path: Path):
    """A phone's portrait JPEG is stored landscape with EXIF Orientation 6: 1350×1080 shown."""
    exif = Image.Exif()
    exif[0x0112] = 6
    photo().resize((1350, 1080)).save(tmp_path / "portrait.jpg", quality=90, exif=exif)
    assert header_facts(tmp_path / "portrait.jpg")[:2] == (1080, 1350)
    exif[0x0112] = 3  # upside down: turned, the same size
    photo().resize((300, 200)).save(tmp_path / "flipped.jpg", quality=90, exif=exif)
    assert header_facts(tmp_path / "flipped.jpg")[:2] == (300, 200)


@pytest.mark.parametrize("q", [10, 40, 60, 75, 90])
def test_jpeg_quality_is_read_back_from_the_tables(tmp_path: Path, q: int):
    path = tmp_path / f"{q}.jpg"
    photo().save(path, quality=q)
    with Image.open(path) as im:
        assert abs((jpeg_quality(im.quantization) or 0) - q) <= 1
    assert jpeg_quality(None) is None


def test_a_shallow_depth_of_field_is_not_blurry():
    """A sharp subject on a blurred background: the subject's sharpness counts."""
    back = np.asarray(photo(1).filter(ImageFilter.GaussianBlur(4)), dtype=np.uint8).copy()
    subject = np.asarray(photo(2), dtype=np.uint8)
    back[70:160, 70:160] = subject[70:160, 70:160]
    assert "blurry" not in flags(Image.fromarray(back))


def test_each_threshold_is_documented_with_its_measured_source():
    doc = (ROOT / "docs" / "quality.md").read_text(encoding="utf-8")
    from imagion.inference import groups

    names = ("BLURRY", "DARK_MEAN", "DARK_TOP", "CLIPPED", "LOW_RESOLUTION", "COMPRESSED")
    for module, name in [(quality, n) for n in names] + [(groups, "SHARPER")]:
        cell = re.search(rf"\| `{name}` \| ([0-9.]+) \| \S", doc)  # the value, then its source
        assert cell is not None and float(cell.group(1)) == getattr(module, name), name
    assert "bench/quality_flags.py" in doc


def _shot(name: str, raw: float, q: quality.Quality) -> Ranked:
    return Ranked(Path(name), 5.0, raw, quality=q)


GOOD = quality.Quality(1.3, 0.5, 0.9, 0.0, 1080, 1080, 80, [])
BLURRY = quality.Quality(0.8, 0.5, 0.9, 0.0, 1080, 1080, 95, ["blurry"])


def _cal() -> Calibration:
    return Calibration(list(np.linspace(-1, 1, 101)), pair_scale=1.0, pair_source="test")


def test_a_flawed_favourite_loses_to_its_unflawed_copy_on_a_toss_up():
    shots = [_shot("blur.jpg", 0.03, BLURRY), _shot("orig.jpg", 0.0, GOOD)]
    order, why = lead(shots, _cal())
    assert [s.path.name for s in order] == ["orig.jpg", "blur.jpg"]
    assert why is not None and "without a flaw" in why and "blurry" in why
    assert "cannot tell them apart" in why
    g = Group(1, order, chosen_for=why)
    assert g.verdict().startswith("#1 of 2 similar shots: the only one without a flaw")


def test_the_verdict_says_the_flaw_in_words_and_a_little_sharper_is_not_sharper():
    from imagion.inference.groups import SHARPER

    clipped = quality.Quality(1.3, 0.7, 1.0, 0.2, 1080, 1080, 80, ["highlights clipped"])
    _, why = lead([_shot("bright.jpg", 0.02, clipped), _shot("orig.jpg", 0.0, GOOD)], _cal())
    assert why is not None and "(the likes model's favourite has clipped highlights)" in why
    a_bit = quality.Quality(GOOD.sharpness + SHARPER / 2, 0.5, 0.9, 0.0, 1080, 1080, 80, [])
    order, why = lead([_shot("orig.jpg", 0.02, GOOD), _shot("bright.jpg", 0.0, a_bit)], _cal())
    assert order[0].path.name == "orig.jpg" and why is None
    much = quality.Quality(GOOD.sharpness + 2 * SHARPER, 0.5, 0.9, 0.0, 1080, 1080, 80, [])
    order, why = lead([_shot("soft.jpg", 0.02, GOOD), _shot("sharp.jpg", 0.0, much)], _cal())
    assert order[0].path.name == "sharp.jpg" and why is not None and "the sharpest of 2" in why


def test_a_confident_likes_model_keeps_its_favourite():
    cal = _cal()
    raw = 3.0  # σ(3) ≈ 95% ≥ CONFIDENT
    assert (cal.win_probability(raw, 0.0) or 0) >= CONFIDENT
    shots = [_shot("blur.jpg", raw, BLURRY), _shot("orig.jpg", 0.0, GOOD)]
    order, why = lead(shots, cal)
    assert order[0].path.name == "blur.jpg" and why is None


def test_a_resaved_copy_loses_to_its_original():
    resaved = quality.Quality(1.3, 0.5, 0.9, 0.0, 1080, 1080, 65, [])
    shots = [_shot("copy.jpg", 0.02, resaved), _shot("orig.jpg", 0.0, GOOD)]
    order, why = lead(shots, _cal())
    assert order[0].path.name == "orig.jpg" and why is not None and "least compressed" in why


def test_rank_json_and_csv_carry_the_measures_and_the_table_the_flags(runner, tmp_path: Path):
    import csv
    import io
    import json

    from imagion.cli import app

    folder = tmp_path / "shoot"
    folder.mkdir()
    big = photo(3).resize((900, 900))
    big.save(folder / "sharp.jpg", quality=90)
    big.filter(ImageFilter.GaussianBlur(12)).save(folder / "soft.jpg", quality=90)
    res = runner.invoke(app, ["rank", str(folder), "--json"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert rows["soft.jpg"]["quality"]["flags"] == ["blurry"]
    assert rows["sharp.jpg"]["quality"]["flags"] == []
    assert rows["sharp.jpg"]["quality"]["width"] == 900
    res = runner.invoke(app, ["rank", str(folder), "--csv"])
    table = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert table["soft.jpg"]["flags"] == "blurry" and float(table["soft.jpg"]["sharpness"]) < 1
    res = runner.invoke(app, ["rank", str(folder)])
    assert "flagged: blurry" in res.stdout


def test_the_page_card_shows_the_flags():
    from imagion.serve.page import _card

    html = _card(0, _shot("blur.jpg", 0.1, BLURRY), "", False)
    assert "flagged: blurry" in html
    assert "flagged" not in _card(0, _shot("orig.jpg", 0.1, GOOD), "", False)


def test_tiny_or_no_inputs_do_not_fail():
    width = quality.PIXEL_MEASURES
    assert pixel_measures(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, width)
    tiny = pixel_measures(np.zeros((2, 8, 8, 3), np.uint8))
    assert tiny.shape == (2, width) and np.isfinite(tiny).all()


def test_pick_csv_has_the_quality_columns(runner, tmp_path: Path):
    import csv
    import io

    from imagion.cli import app

    folder = tmp_path / "shoot"
    folder.mkdir()
    photo(4).resize((900, 900)).save(folder / "a.jpg", quality=90)
    photo(4).resize((900, 900)).save(folder / "a_q30.jpg", quality=30)
    res = runner.invoke(app, ["rank", str(folder), "--groups", "--csv"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert rows["a_q30.jpg"]["flags"] == "heavily compressed" and rows["a.jpg"]["flags"] == ""
    assert rows["a.jpg"]["best_in_group"] == "True" and rows["a.jpg"]["jpeg_quality"] == "90"


def test_the_verdict_says_how_unsure_the_likes_model_is():
    shots = [_shot("blur.jpg", 0.5, BLURRY), _shot("orig.jpg", 0.0, GOOD)]  # σ(0.5) ≈ 62%
    _, why = lead(shots, _cal())
    assert why is not None and "is not sure (62% for its favourite)" in why
    uncalibrated = Calibration(list(np.linspace(-1, 1, 101)))
    _, why = lead(shots, uncalibrated)
    assert why is not None and "unknown for this model" in why and "apart" not in why
