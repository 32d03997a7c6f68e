"""Photos as phones and cameras write them: HEIC/HEIF, AVIF, camera RAW (the embedded preview),
wide-gamut colour converted to sRGB, EXIF orientation for every format, and their bad cases."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from imagion.cli import app
from imagion.errors import InputError
from imagion.formats import openers
from imagion.images import decoded, find_images, load_square, open_image
from imagion.inference.rank import rank_images
from tests.helpers import dataset
from tests.photo_files import display_p3, photo, vivid, write_dng, write_heic


@pytest.fixture(scope="module")
def shoot(tmp_path_factory) -> Path:
    """A folder of one photo of each kind: HEIC, AVIF, DNG with a preview, DNG without, JPEG."""
    folder = tmp_path_factory.mktemp("shoot")
    write_heic(folder / "IMG_0001.HEIC", photo(0.3, seed=1))
    photo(0.5, seed=2).save(folder / "IMG_0002.avif", quality=80)
    write_dng(folder / "DSC_0003.DNG", photo(0.7, size=480, seed=3))
    write_dng(folder / "DSC_0004.dng", None)
    photo(0.6, seed=5).save(folder / "IMG_0005.jpg", quality=90)
    return folder


def test_every_kind_is_found_and_scored(shoot, caplog):
    images, problems = find_images([shoot])
    assert sorted(p.name for p in images) == [
        "DSC_0003.DNG",
        "DSC_0004.dng",
        "IMG_0001.HEIC",
        "IMG_0002.avif",
        "IMG_0005.jpg",
    ]
    assert problems == []
    with caplog.at_level(logging.WARNING, logger="imagion"):
        result = rank_images([shoot], suggest=False)
    assert result.problems == [] and result.scored == 5
    assert all(0 <= r.score <= 10 for r in result.items)
    # the DNG without a preview was demosaiced, and that was said (only for that one)
    said = [r.getMessage() for r in caplog.records if "preview" in r.getMessage()]
    assert len(said) == 1 and "DSC_0004.dng" in said[0] and "demosaiced" in said[0]


def test_rank_pick_groups_cli_score_every_file(runner, shoot):
    res = runner.invoke(app, ["rank", str(shoot), "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 5
    res = runner.invoke(app, ["rank", str(shoot), "--groups", "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 5
    res = runner.invoke(app, ["pick", str(shoot), "-n", "5", "--json"])
    assert res.exit_code == 0, res.output
    assert "skipped" not in res.stderr
    assert len(json.loads(res.stdout)) >= 1


def test_raw_uses_the_embedded_preview(tmp_path):
    preview = Image.new("RGB", (480, 320), (200, 40, 40))
    im = open_image(write_dng(tmp_path / "a.dng", preview))
    assert im.size == (480, 320)  # the preview, not the 96×64 mosaic
    arr = np.asarray(decoded(im, 224, "a.dng"))
    assert abs(arr.reshape(-1, 3).mean(0) - (200, 40, 40)).max() < 2


def test_heif_with_several_images_opens_at_its_primary(tmp_path):
    import pillow_heif

    heif = pillow_heif.from_pillow(Image.new("RGB", (64, 64), (250, 0, 0)))
    heif.add_from_pillow(Image.new("RGB", (64, 64), (0, 0, 250)))
    heif.add_from_pillow(Image.new("RGB", (64, 64), (0, 250, 0)))
    heif.save(tmp_path / "burst.heic", quality=95, primary_index=1)
    r, g, b = load_square(tmp_path / "burst.heic", 32).reshape(-1, 3).mean(0)
    assert b > 200 and r < 50 and g < 50  # the primary (blue), not the first (red)


def _turned(im: Image.Image) -> Image.Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    return exif


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "heic", "avif", "dng"])
def test_exif_orientation_applied_for_every_format(tmp_path, fmt):
    wide = Image.new("RGB", (480, 320), (20, 20, 20))
    wide.paste((250, 250, 250), (0, 0, 480, 40))  # a white band along the top
    path = tmp_path / f"turned.{fmt}"
    if fmt == "dng":
        write_dng(path, wide, orientation=6)
    elif fmt == "heic":
        import pillow_heif

        pillow_heif.from_pillow(wide).save(path, quality=95, exif=_turned(wide).tobytes())
    else:
        wide.save(path, exif=_turned(wide), quality=95)
    im = open_image(path)
    upright = np.asarray(decoded(im, 320, path.name))
    assert upright.shape[:2] == (480, 320)  # tall: turned
    # turned clockwise, the top band is now the right-hand column
    assert upright[:, -20:].mean() > 200 and upright[:, :20].mean() < 60


def _p3_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the sRGB original, its conversion to Display P3 with the profile, the same P3 pixels
    without a profile)."""
    original = vivid(256)
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(display_p3()))
    as_p3 = ImageCms.profileToProfile(
        original, ImageCms.createProfile("sRGB"), p3, outputMode="RGB"
    )
    assert as_p3 is not None
    original.save(tmp_path / "srgb.png")
    as_p3.save(tmp_path / "p3.png", icc_profile=display_p3())
    as_p3.info.pop("icc_profile", None)  # (ImageCms tags its output with the profile)
    as_p3.save(tmp_path / "stripped.png")
    return tmp_path / "srgb.png", tmp_path / "p3.png", tmp_path / "stripped.png"


def test_display_p3_is_converted_to_srgb_before_the_model(tmp_path):
    srgb, p3, stripped = _p3_files(tmp_path)
    a, b, c = (load_square(p, 224).astype(float) for p in (srgb, p3, stripped))
    assert np.abs(a - b).mean() < 1.5  # converted back: the same pixels, give or take rounding
    assert np.abs(a - c).mean() > 8  # taken as sRGB, P3 values are duller colours
    scores = {r.path.name: r.score for r in rank_images([srgb, p3, stripped], suggest=False).items}
    assert abs(scores["p3.png"] - scores["srgb.png"]) < 0.05
    # the same pixels unconverted score apart (0.12 measured, 12× the converted one's 0.01)
    assert abs(scores["stripped.png"] - scores["srgb.png"]) > 0.05


def test_cmyk_jpeg_with_profile_and_broken_profile_still_decode(tmp_path):
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    arr = load_square(tmp_path / "cmyk.jpg", 32)
    assert arr[..., 0].mean() > 150  # red, without a profile the naive conversion
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "bad.png", icc_profile=b"junk" * 40)
    assert abs(load_square(tmp_path / "bad.png", 32)[..., 1].mean() - 200) < 2


# --- bad input: one clear line naming the file, the others still scored ---


def _line(exc: pytest.ExceptionInfo[InputError], name: str) -> str:
    text = str(exc.value)
    assert name in text and "\n" not in text
    return text


def test_truncated_heic_and_heif_without_image(tmp_path):
    good = write_heic(tmp_path / "good.heic", photo(0.5, size=256))
    (tmp_path / "cut.heic").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    # an ftyp box that says HEIC, and nothing else: no image in it
    (tmp_path / "empty.heic").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic")
    for name in ("cut.heic", "empty.heic"):
        with pytest.raises(InputError) as exc:
            load_square(tmp_path / name, 64)
        _line(exc, name)
    result = rank_images([tmp_path], suggest=False)
    assert [r.path.name for r in result.items] == ["good.heic"] and len(result.problems) == 2


def test_raw_without_preview_over_the_limit_is_refused_before_unpacking(tmp_path):
    path = write_dng(tmp_path / "huge.dng", None, raw_size=(96, 64))
    with pytest.raises(InputError) as exc:
        open_image(path, max_pixels=96 * 64 - 1)
    assert "without a usable embedded preview" in _line(exc, "huge.dng")
    # with a preview, the preview alone is decoded (and it is what the limit counts)
    write_dng(tmp_path / "big.dng", photo(0.5, size=400), raw_size=(96, 64))
    assert open_image(tmp_path / "big.dng", max_pixels=400 * 400).size == (400, 400)


def test_not_a_raw_file_and_a_missing_opener(tmp_path, monkeypatch):
    (tmp_path / "IMG_1.CR2").write_bytes(b"II*\0 this is not a raw file" * 10)
    with pytest.raises(InputError) as exc:
        open_image(tmp_path / "IMG_1.CR2")
    _line(exc, "IMG_1.CR2")
    write_heic(tmp_path / "a.heic", photo(0.5, size=64))
    monkeypatch.setattr(openers, "register_openers", lambda: ())
    with pytest.raises(InputError) as exc:
        open_image(tmp_path / "a.heic")
    assert "pillow-heif" in _line(exc, "a.heic")
    monkeypatch.setattr(openers, "raw_available", lambda: False)
    write_dng(tmp_path / "b.dng", photo(0.5, size=400))
    with pytest.raises(InputError) as exc:
        open_image(tmp_path / "b.dng")
    assert "rawpy" in _line(exc, "b.dng")


def test_a_jpeg_or_png_named_as_raw_opens_as_what_it_is(tmp_path, runner):
    """A camera's JPEG copy with a .CR2 name, or a PNG renamed .NEF: opened by its first bytes,
    ranked with its size read (it was refused: LibRaw cannot read a JPEG)."""
    from imagion.inference.quality import header_facts

    photo(0.5, size=300).save(tmp_path / "IMG_2.CR2", format="JPEG", quality=88)
    photo(0.4, size=200).save(tmp_path / "IMG_3.NEF", format="PNG")
    assert open_image(tmp_path / "IMG_2.CR2").format == "JPEG"
    assert open_image(tmp_path / "IMG_3.NEF").format == "PNG"
    assert header_facts(tmp_path / "IMG_2.CR2") == (300, 300, 88)
    res = runner.invoke(app, ["rank", str(tmp_path), "--json", "--no-index"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert set(rows) == {"IMG_2.CR2", "IMG_3.NEF"}
    assert rows["IMG_2.CR2"]["quality"]["width"] == 300


def test_page_offers_heic_and_the_server_scores_it(tmp_path):
    import pillow_heif
    from fastapi.testclient import TestClient

    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app
    from imagion.settings import bundled_model_path
    from tests.serve_helpers import multipart

    buf = io.BytesIO()
    pillow_heif.from_pillow(photo(0.5, size=200)).save(buf, format="HEIF", quality=85)
    app_, scorer = build_app(str(bundled_model_path()), "cpu", Limits())
    try:
        with TestClient(app_) as c:
            page = c.get("/").text
            assert 'accept="image/*,.heic,.heif,.avif"' in page
            raw = write_dng(tmp_path / "DSC_1.DNG", photo(0.5, size=400)).read_bytes()
            body, ctype = multipart([("IMG_0001.HEIC", buf.getvalue()), ("DSC_1.DNG", raw)])
            res = c.post("/api/score", content=body, headers={"Content-Type": ctype})
            assert res.status_code == 200, res.text
            data = res.json()
            assert [r["path"] for r in data["results"]] == ["IMG_0001.HEIC"]
            # RAW is refused by the server (LibRaw would decode outside its byte budget)
            assert len(data["problems"]) == 1 and "DSC_1.DNG" in data["problems"][0]
    finally:
        scorer.close()


@pytest.mark.slow
def test_heic_and_jpeg_of_20_real_photos_score_alike(tmp_path):
    """20 ig-celeb12 photos (480 px) saved as HEIC and as JPEG (quality 90) score alike (mean ≤ 0.1)."""
    photos = sorted(dataset("ig-celeb12").rglob("*.jpg"))[:20]
    assert len(photos) == 20
    for k, p in enumerate(photos):
        im = Image.open(p).convert("RGB")
        im.thumbnail((480, 480))  # (x265 encodes a full-size photo in seconds)
        im.save(tmp_path / f"{k:02d}.jpg", quality=90)
        write_heic(tmp_path / f"{k:02d}.heic", im, quality=90)
    scores = {r.path.name: r.score for r in rank_images([tmp_path], suggest=False).items}
    assert len(scores) == 40
    diffs = [abs(scores[f"{k:02d}.heic"] - scores[f"{k:02d}.jpg"]) for k in range(20)]
    print(f"mean |HEIC - JPEG| score difference: {np.mean(diffs):.3f}")
    assert float(np.mean(diffs)) <= 0.1
