"""XMP sidecars: rank --xmp and pick --xmp write what photo managers read, and an existing
sidecar keeps every field it had."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from imagion.cli import app
from imagion.sidecars.xmp import (
    DC,
    IMAGION,
    RDF,
    XMP,
    Marks,
    merge,
    sidecar_path,
    write_sidecars,
)
from tests.helpers import write_image

# A Lightroom Classic sidecar with develop settings, keywords and other tools' namespaces:
# 20 fields imagion must keep as they are.
FOREIGN = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000, 0000/00/00-00:00:00">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   tiff:Make="Canon"
   tiff:Model="Canon EOS R5"
   exif:ExposureTime="1/250"
   exif:FNumber="28/10"
   xmp:CreatorTool="Adobe Photoshop Lightroom Classic 13.0"
   xmp:ModifyDate="2026-11-02T10:11:12+01:00"
   photoshop:City="Lisboa"
   photoshop:DateCreated="2026-11-01T09:00:00"
   crs:Version="16.0"
   crs:WhiteBalance="As Shot"
   crs:Exposure2012="+0.35"
   crs:Contrast2012="+12"
   crs:Highlights2012="-40"
   crs:Shadows2012="+25"
   crs:HasSettings="True"
   darktable:xmp_version="5"
   darktable:history_end="3">
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Lisbon</rdf:li>
     <rdf:li>tram</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>Places|Lisbon</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
   <crs:ToneCurvePV2012>
    <rdf:Seq>
     <rdf:li>0, 0</rdf:li>
     <rdf:li>255, 255</rdf:li>
    </rdf:Seq>
   </crs:ToneCurvePV2012>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def _fields(text: str | bytes) -> dict[str, object]:
    """Every property of every rdf:Description except imagion's own: attributes by name, and
    elements as their list of rdf:li texts (or their text)."""
    root = ET.fromstring(text if isinstance(text, bytes) else text.encode())
    found: dict[str, object] = {}
    for d in root.iter(f"{{{RDF}}}Description"):
        for k, v in d.attrib.items():
            if not k.startswith(f"{{{IMAGION}}}"):
                found[k] = v
        for el in d:
            items = [li.text for li in el.iter(f"{{{RDF}}}li")]
            found[el.tag] = items if items else (el.text or "").strip()
    return found


def _marks(photo: Path, place: int = 1, picked: bool = True) -> Marks:
    return Marks(photo, 7.14, place, 10, 6.2, 7.9, group=2, picked=picked, model="m.onnx")


def test_new_sidecar_read_back(tmp_path):
    text, kept = merge(None, _marks(tmp_path / "IMG_0001.CR2"))
    fields = _fields(text)
    assert kept == []
    assert fields[f"{{{XMP}}}Rating"] == "5" and fields[f"{{{XMP}}}Label"] == "Green"
    assert fields["{http://purl.org/dc/elements/1.1/}subject"] == [
        "imagion pick",
        "imagion group 2",
    ]
    root = ET.fromstring(text)
    d = next(root.iter(f"{{{RDF}}}Description"))
    assert d.get(f"{{{IMAGION}}}Score") == "7.1" and d.get(f"{{{IMAGION}}}ScoreLow") == "6.2"
    assert 'xmlns:imagion="' in text and "ns0" not in text  # prefixes as written, not ns0


def test_existing_sidecar_keeps_every_field_and_reruns_replace_only_imagions(tmp_path):
    before = _fields(FOREIGN)
    foreign = {k: v for k, v in before.items() if not k.startswith("{http://purl.org/dc")}
    assert len(foreign) + 2 >= 20  # 20 and more fields, the two keyword bags included
    once, _ = merge(FOREIGN.encode(), _marks(tmp_path / "a.jpg"))
    twice, _ = merge(once.encode(), _marks(tmp_path / "a.jpg", place=9, picked=False))
    after = _fields(twice)
    for key, value in foreign.items():
        if key.endswith("hierarchicalSubject"):
            assert after[key] == ["Places|Lisbon", "imagion|imagion group 2"]
        else:
            assert after[key] == value, key
    assert after["{http://purl.org/dc/elements/1.1/}subject"] == [
        "Lisbon",
        "tram",
        "imagion group 2",
    ]
    assert after[f"{{{XMP}}}Rating"] == "1" and f"{{{XMP}}}Label" not in after  # no longer a pick
    assert twice.startswith("<?xpacket begin") and "xmlns:crs=" in twice and "ns0:" not in twice


def test_a_rating_set_by_hand_is_kept(tmp_path):
    text, _ = merge(None, _marks(tmp_path / "a.jpg"))
    by_hand = text.replace('xmp:Rating="5"', 'xmp:Rating="2"')
    again, kept = merge(by_hand.encode(), _marks(tmp_path / "a.jpg"), "a.xmp")
    assert _fields(again)[f"{{{XMP}}}Rating"] == "2"
    assert len(kept) == 1 and "a.xmp" in kept[0] and "rating" in kept[0]


def test_naming_and_a_sidecar_shared_by_raw_and_jpeg(tmp_path):
    raw, jpg = tmp_path / "IMG_0001.CR2", tmp_path / "IMG_0001.JPG"
    assert sidecar_path(raw).name == "IMG_0001.xmp"
    assert sidecar_path(raw, "darktable").name == "IMG_0001.CR2.xmp"
    report = write_sidecars([_marks(jpg, 1), _marks(raw, 2, picked=False)])
    assert report.written == [tmp_path / "IMG_0001.xmp"]  # the RAW file's
    assert len(report.problems) == 1 and "IMG_0001.JPG" in report.problems[0]
    assert _fields((tmp_path / "IMG_0001.xmp").read_bytes())[f"{{{XMP}}}Rating"] == "5"
    both = write_sidecars([_marks(jpg, 1), _marks(raw, 2)], "darktable")
    assert len(both.written) == 2 and both.problems == []


def test_bad_sidecars_are_named_and_left_alone_the_others_written(tmp_path):
    photos = [tmp_path / f"p{k}.jpg" for k in range(4)]
    (tmp_path / "p0.xmp").write_text("this is not XML <")
    (tmp_path / "p1.xmp").write_text(FOREIGN)
    os.chmod(tmp_path / "p1.xmp", 0o444)
    (tmp_path / "elsewhere.xmp").write_text(FOREIGN)
    (tmp_path / "p2.xmp").symlink_to(tmp_path / "elsewhere.xmp")
    report = write_sidecars([_marks(p, k + 1) for k, p in enumerate(photos)])
    assert report.written == [tmp_path / "p3.xmp"]
    assert len(report.problems) == 3
    for name, why in (("p0.xmp", "not XML"), ("p1.xmp", "read-only"), ("p2.xmp", "link")):
        line = next(p for p in report.problems if name in p)
        assert why in line and "\n" not in line
    assert (tmp_path / "p0.xmp").read_text() == "this is not XML <"
    assert (tmp_path / "p1.xmp").read_text() == FOREIGN
    assert (tmp_path / "elsewhere.xmp").read_text() == FOREIGN


@pytest.fixture
def shoot(tmp_path) -> Path:
    folder = tmp_path / "shoot"
    for k, b in enumerate([0.2, 0.5, 0.8]):
        write_image(folder / f"IMG_000{k}.jpg", b, size=64, seed=k)
    return folder


def test_pick_xmp_keeps_20_foreign_fields_and_never_touches_photos(runner, shoot):
    (shoot / "IMG_0001.xmp").write_text(FOREIGN)
    photos = {p: p.read_bytes() for p in shoot.glob("*.jpg")}
    before = _fields(FOREIGN)
    res = runner.invoke(app, ["pick", str(shoot), "-n", "2", "--xmp", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would update" in res.stderr and "IMG_0001.xmp" in res.stderr
    assert sorted(p.name for p in shoot.glob("*.xmp")) == ["IMG_0001.xmp"]  # nothing written
    res = runner.invoke(app, ["pick", str(shoot), "-n", "2", "--xmp", "--json"])
    assert res.exit_code == 0, res.output
    picked = {Path(p["path"]).stem for p in json.loads(res.stdout)}
    assert sorted(p.name for p in shoot.glob("*.xmp")) == [f"IMG_000{k}.xmp" for k in range(3)]
    after = _fields((shoot / "IMG_0001.xmp").read_bytes())
    kept = [k for k, v in before.items() if after.get(k) == v or k.endswith("ubject")]
    assert len(kept) == len(before) >= 20
    assert set(after["{http://purl.org/dc/elements/1.1/}subject"]) >= {"Lisbon", "tram"}
    for stem in picked:
        assert _fields((shoot / f"{stem}.xmp").read_bytes())[f"{{{XMP}}}Label"] == "Green"
    assert {p: p.read_bytes() for p in shoot.glob("*.jpg")} == photos


def test_rank_xmp_and_dry_run_needs_xmp(runner, shoot):
    res = runner.invoke(app, ["rank", str(shoot), "--dry-run"])
    assert res.exit_code == 1 and "--dry-run" in res.stderr and "--xmp" in res.stderr
    res = runner.invoke(app, ["rank", str(shoot), "--xmp", "--xmp-naming", "darktable"])
    assert res.exit_code == 0, res.output
    stars = sorted(_fields(p.read_bytes())[f"{{{XMP}}}Rating"] for p in shoot.glob("*.jpg.xmp"))
    assert stars == ["2", "4", "5"]  # places 1, 2, 3 of 3: the best fifth 5★…
    res = runner.invoke(app, ["rank", str(shoot), "--groups", "--xmp"])
    assert res.exit_code == 0, res.output
    words = [_fields(p.read_bytes())[f"{{{DC}}}subject"] for p in sorted(shoot.glob("*0.xmp"))]
    assert len(words) == 1 and words[0][0].startswith("imagion group ")


@pytest.mark.skipif(
    shutil.which("exiftool") is None,
    reason="exiftool is not installed (Debian: libimage-exiftool-perl; .ci/run installs it)",
)
def test_exiftool_reads_what_imagion_wrote(tmp_path):
    (tmp_path / "IMG_0001.xmp").write_text(FOREIGN)
    report = write_sidecars([_marks(tmp_path / "IMG_0001.CR2")])
    assert report.problems == []
    out = subprocess.run(
        ["exiftool", "-j", "-XMP:all", str(tmp_path / "IMG_0001.xmp")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = json.loads(out.stdout)[0]
    assert got["Rating"] == 5 and got["Label"] == "Green"
    assert got["Subject"] == ["Lisbon", "tram", "imagion pick", "imagion group 2"]
    assert "imagion|imagion group 2" in got["HierarchicalSubject"]
    assert got["Score"] == 7.1 and got["ScoreLow"] == 6.2 and got["ScoreHigh"] == 7.9
    assert got["Exposure2012"] == "+0.35" and got["City"] == "Lisboa"  # still there
