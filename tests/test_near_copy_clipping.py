"""Clipped highlights told apart by a darker near-copy (issue #34): a white backdrop is 40% pure
white on purpose, a brightened copy of a dark photo may clip 3% — only beside the darker copy of
the same picture is the brighter one's loss plain (inference/near_copies.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from imagion.inference import near_copies
from imagion.inference.near_copies import beside_near_copies
from imagion.inference.quality import CLIPPED, Quality
from tests.helpers import dataset
from tests.test_quality import photo

HASH = np.uint64(0x0F0F_3C3C_5A5A_A5A5)  # 32 of 64 bits set: a hash with a picture in it
GREY = np.array([100.0, 100.0, 100.0])


def q(
    clipped: float,
    brightness: float,
    flags: list[str] | None = None,
    at_top: float = 0.001,
    size: tuple[int, int] = (1080, 1080),
) -> Quality:
    return Quality(1.3, brightness, 0.9, clipped, *size, 85, list(flags or []), at_top=at_top)


def judged(
    qualities: list[Quality],
    hashes: list[np.uint64] | None = None,
    colours: list[np.ndarray] | None = None,
    features: np.ndarray | None = None,
) -> list[Quality]:
    n = len(qualities)
    h = np.array(hashes if hashes is not None else [HASH] * n, np.uint64)
    c = np.array(colours if colours is not None else [GREY] * n)
    f = features if features is not None else np.ones((n, 8), np.float32)
    return beside_near_copies(qualities, f, h, c, [f"shot{k}.jpg" for k in range(n)])


def test_the_brighter_copy_that_clips_more_is_flagged_and_its_original_is_not():
    original, brighter = q(0.0, 0.40), q(0.05, 0.55)
    out = judged([original, brighter])
    assert out[0].flags == [] and out[0].near_copy_clipped is None
    assert out[1].flags == ["highlights clipped"] and out[1].near_copy_clipped == 0.0
    assert out[1].text == "flagged: highlights clipped (beside the darker copy shot0.jpg)"
    assert out[1].to_dict()["near_copy"] == "shot0.jpg"
    assert out[1].to_dict()["near_copy_clipped"] == 0.0


def test_a_white_backdrop_alone_or_beside_a_different_picture_is_not_flagged():
    backdrop = q(CLIPPED - 0.01, 0.70)  # a screenshot of a page: 40% pure white
    assert judged([backdrop])[0].flags == []
    other = np.uint64(int(HASH) ^ 0xFFFF_FFFF)  # 32 bits differ: another picture
    out = judged([backdrop, q(0.0, 0.30)], hashes=[HASH, other])
    assert out[0].flags == []
    feats = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)  # same hash, different content
    assert judged([backdrop, q(0.0, 0.30)], features=feats)[0].flags == []


def test_a_too_dark_copy_is_no_reference_and_a_blur_is_no_exposure_change():
    original = q(0.40, 0.56)
    assert judged([original, q(0.0, 0.22, ["too dark"])])[0].flags == []
    assert judged([original, q(0.35, 0.555, ["blurry"])])[0].flags == []  # same brightness


def test_a_dimmed_copy_of_a_clipped_photo_keeps_no_highlights():
    """A white backdrop dimmed to 70% is a flat grey top: the original is not flagged beside it."""
    original, dimmed = q(0.40, 0.70), q(0.0, 0.49, at_top=0.40)
    assert judged([original, dimmed])[0].flags == []
    partly = q(0.0, 0.49, at_top=0.30)  # a copy that keeps a tenth of the picture's highlights
    assert judged([original, partly])[0].flags == ["highlights clipped"]


def test_a_crop_is_not_a_darker_copy():
    """A tighter crop of a photo on a white frame clips less without keeping anything."""
    framed, cropped = q(0.40, 0.70), q(0.25, 0.60, at_top=0.25, size=(950, 950))
    assert judged([framed, cropped])[0].flags == []
    unknown = q(0.0, 0.4, size=(0, 0))  # no header facts: nothing to compare with
    assert judged([q(0.1, 0.6), unknown])[0].flags == []


def test_real_photos_dimmed_or_cropped_do_not_flag_their_original(tmp_path: Path):
    """A photo with a white frame, beside copies dimmed to 70–95% and crops of it (the review's
    case: the original was flagged, and pick chose a dimmed copy)."""
    import imagion

    src = next(p for p in sorted(dataset("ig-celeb12").glob("*/*.jpg")) if _white_share(p) > 0.2)
    (tmp_path / "original.jpg").write_bytes(src.read_bytes())
    with Image.open(src) as im:
        rgb = im.convert("RGB")
    for f in (0.7, 0.85, 0.95):
        ImageEnhance.Brightness(rgb).enhance(f).save(tmp_path / f"dim{f}.jpg", quality=95)
    w, h = rgb.size
    for c in (0.03, 0.06):
        box = (int(w * c), int(h * c), int(w * (1 - c)), int(h * (1 - c)))
        rgb.crop(box).save(tmp_path / f"crop{c}.jpg", quality=95)
    rows = imagion.rank(tmp_path, index=False, suggest=False).to_list()
    clipped = {
        Path(str(r["path"])).name
        for r in rows
        if "highlights clipped" in r["quality"]["flags"]  # type: ignore[index]
    }
    assert clipped == set(), clipped


def _white_share(path: Path) -> float:
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L").resize((64, 64)))
    return float((grey >= 250).mean())


def test_the_margins_are_what_the_module_says():
    m, b = near_copies.MORE_CLIPPED, near_copies.BRIGHTER
    assert judged([q(0.0, 0.4), q(m - 0.001, 0.4 + 2 * b)])[1].flags == []
    assert judged([q(0.0, 0.4), q(2 * m, 0.4 + b / 2)])[1].flags == []
    hue = [GREY, GREY * np.array([1.3, 1.0, 0.7])]  # the brighter one's hue moved: another picture
    assert judged([q(0.0, 0.4), q(0.1, 0.6)], colours=hue)[1].flags == []


def test_flags_keep_their_order_and_an_already_clipped_photo_is_unchanged():
    out = judged([q(0.0, 0.4), q(0.05, 0.6, ["blurry", "low resolution"])])
    assert out[1].flags == ["blurry", "highlights clipped", "low resolution"]
    very = q(CLIPPED + 0.1, 0.9, ["highlights clipped"])
    out = judged([q(0.0, 0.4), very])
    assert out[1].flags == ["highlights clipped"] and out[1].text == "flagged: highlights clipped"


def test_rank_flags_the_brightened_copy_of_a_photo_and_not_its_original(runner, tmp_path: Path):
    from imagion.cli import app

    folder = tmp_path / "shoot"
    folder.mkdir()
    big = photo(5).resize((900, 900))
    big.save(folder / "original.jpg", quality=90)
    ImageEnhance.Brightness(big).enhance(1.45).save(folder / "brighter.jpg", quality=90)
    index = tmp_path / "photos.imagion-index"
    for _ in range(2):  # decoded, then from the photo index: the same flags
        res = runner.invoke(app, ["rank", str(folder), "--json", "--index", str(index)])
        assert res.exit_code == 0, res.output
        rows = {Path(r["path"]).name: r["quality"] for r in json.loads(res.stdout)}
        assert rows["original.jpg"]["flags"] == []
        assert rows["brighter.jpg"]["flags"] == ["highlights clipped"]
        assert rows["brighter.jpg"]["clipped"] < CLIPPED  # not clipped enough on its own
    alone = runner.invoke(app, ["rank", str(folder / "brighter.jpg"), "--json", "--no-index"])
    assert json.loads(alone.stdout)[0]["quality"]["flags"] == []
    table = runner.invoke(app, ["rank", str(folder), "--no-index"])
    cells = " ".join(table.stdout.replace("│", " ").split())  # a cell wraps over lines
    assert "flagged: highlights clipped (beside the darker copy original.jpg)" in cells


def test_real_photos_brightened_are_flagged_beside_their_originals(tmp_path: Path):
    """Three ig-celeb12 photos and their copies brightened 1.7× (bench/quality_flags.py does 20)."""
    import imagion

    sources = sorted(dataset("ig-celeb12").glob("*/*.jpg"))[::40][:3]
    for k, src in enumerate(sources):
        (tmp_path / f"m{k}_original.jpg").write_bytes(src.read_bytes())
        with Image.open(src) as im:
            copy = ImageEnhance.Brightness(im.convert("RGB")).enhance(1.7)
        copy.save(tmp_path / f"m{k}_brighter.jpg", quality=95)
    rows = imagion.rank(tmp_path, index=False, suggest=False).to_list()
    got = {Path(str(r["path"])).stem: r["quality"]["flags"] for r in rows}  # type: ignore[index]
    assert all(got[f"m{k}_original"] == [] for k in range(3)), got
    hits = sum("highlights clipped" in got[f"m{k}_brighter"] for k in range(3))
    assert hits == 3, got


@pytest.mark.parametrize("n", [1, 2])
def test_no_photo_or_one_photo_needs_no_comparison(n: int):
    assert len(judged([q(0.1, 0.5)] * n)) == n
