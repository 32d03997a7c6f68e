"""XMP sidecars a photo manager reads: star rating, colour label and keywords from imagion's
result, merged into an existing sidecar without changing anything else in it.

imagion writes only these fields (docs/xmp.md): `xmp:Rating`, `xmp:Label` (its picks),
`dc:subject` and `lr:hierarchicalSubject` keywords starting with "imagion", and its own
namespace `imagion:` (score, range, place, group, model, and the rating/label it wrote, so that
a rating or label set by hand afterwards is recognised and kept). Every other element,
attribute, namespace and keyword of an existing sidecar is kept as it was; the file is replaced
atomically (a temporary file renamed over it); photos are never opened for writing."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import stat
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from imagion.choices import XmpNaming, choice
from imagion.files import write_text_atomic
from imagion.formats.openers import RAW_SUFFIXES
from imagion.scores import score_text

if TYPE_CHECKING:
    from imagion.inference.groups import Group
    from imagion.inference.rank import Ranked

logger = logging.getLogger("imagion")

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP = "http://ns.adobe.com/xap/1.0/"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
IMAGION = "http://ns.imagion.dev/xmp/1.0/"
PREFIXES = {"x": X, "rdf": RDF, "xmp": XMP, "dc": DC, "lr": LR, "imagion": IMAGION}

PICK_LABEL = "Green"  # Lightroom's, Bridge's and Capture One's "green" label
KEYWORD = "imagion"  # every keyword imagion writes starts with this (and only those are its own)
STARS = 5
MAX_SIDECAR_BYTES = 16 * 2**20  # a sidecar with develop settings is well under 1 MB
# imagion's own fields (attributes of an rdf:Description)
FIELDS = (
    "Score",
    "ScoreLow",
    "ScoreHigh",
    "Place",
    "Of",
    "Group",
    "Picked",
    "Model",
    "Rating",
    "Label",
)

_LOCK = threading.Lock()  # ElementTree's prefix table is process-wide


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


@dataclass(frozen=True)
class Marks:
    """What imagion writes about one photo."""

    photo: Path
    score: float
    place: int  # 1 = the best of the photos ranked together
    of: int
    low: float | None = None
    high: float | None = None
    group: int | None = None  # its group of near-duplicates (rank --groups, pick)
    picked: bool = False
    model: str = ""

    @property
    def rating(self) -> int:
        """Stars by place: the best fifth of the photos ranked together 5★, the last fifth 1★."""
        return STARS - math.floor(STARS * (self.place - 1) / max(self.of, 1))

    @property
    def label(self) -> str | None:
        return PICK_LABEL if self.picked else None

    @property
    def keywords(self) -> list[str]:
        words = [f"{KEYWORD} pick"] if self.picked else []
        if self.group is not None:
            words.append(f"{KEYWORD} group {self.group}")
        return words

    def summary(self) -> str:
        parts = [f"{self.rating}★"]
        if self.label:
            parts.append(f"label {self.label}")
        parts += self.keywords
        rng = (
            ""
            if self.low is None or self.high is None
            else f" ({score_text(self.low)}–{score_text(self.high)})"
        )
        parts.append(f"score {score_text(self.score)}{rng}")
        return ", ".join(parts)


@dataclass
class SidecarReport:
    """Sidecars written (or, on a dry run, that would be), what was kept, what could not be."""

    written: list[Path] = field(default_factory=list)
    planned: list[tuple[Path, Marks, bool]] = field(
        default_factory=list
    )  # (sidecar, marks, exists)
    kept: list[str] = field(default_factory=list)  # a hand-set rating or label left as it was
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False


class SidecarError(Exception):
    """A sidecar imagion will not touch (its text says why)."""


def sidecar_path(photo: str | Path, naming: XmpNaming | str = XmpNaming.adobe) -> Path:
    """The sidecar of `photo`: `IMG_0001.xmp` (adobe) or `IMG_0001.CR2.xmp` (darktable)."""
    photo = Path(photo)
    if choice(XmpNaming, naming, "xmp_naming") == XmpNaming.darktable:
        return photo.with_name(photo.name + ".xmp")
    return photo.with_suffix(".xmp")


def _new_document() -> ET.Element:
    root = ET.Element(_q(X, "xmpmeta"), {_q(X, "xmptk"): "imagion"})
    rdf = ET.SubElement(root, _q(RDF, "RDF"))
    ET.SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})
    return root


def _parse(data: bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    """The document and its namespace prefixes; SidecarError when it is not XML imagion reads."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SidecarError("has a DOCTYPE or entities, which XMP never has")
    try:
        prefixes = [item for _, item in ET.iterparse(io.BytesIO(data), events=("start-ns",))]
        builder = ET.TreeBuilder(insert_comments=True, insert_pis=True)
        root = ET.fromstring(data, parser=ET.XMLParser(target=builder))
    except ET.ParseError as exc:
        raise SidecarError(f"not XML ({exc})") from None
    return root, prefixes


def _descriptions(root: ET.Element) -> list[ET.Element]:
    rdf = root if root.tag == _q(RDF, "RDF") else root.find(f".//{_q(RDF, 'RDF')}")
    if rdf is None:
        raise SidecarError("no rdf:RDF in it: not an XMP sidecar")
    found = rdf.findall(_q(RDF, "Description"))
    if not found:
        found = [ET.SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})]
    return found


def _value(descs: list[ET.Element], ns: str, name: str) -> str | None:
    """A simple property, as an attribute or as an element, of any rdf:Description."""
    key = _q(ns, name)
    for d in descs:
        if key in d.attrib:
            return d.attrib[key]
        el = d.find(key)
        if el is not None:
            return (el.text or "").strip()
    return None


def _remove(descs: list[ET.Element], ns: str, name: str) -> None:
    key = _q(ns, name)
    for d in descs:
        d.attrib.pop(key, None)
        for el in d.findall(key):
            d.remove(el)


def _set_bag(descs: list[ET.Element], ns: str, name: str, words: list[str], own: str) -> None:
    """The keyword bag `ns:name`: its items that start with `own` replaced by `words`, the
    others kept in their order."""
    key = _q(ns, name)
    prop = next((el for d in descs for el in d.findall(key)), None)
    if prop is None:
        if not words:
            return
        prop = ET.SubElement(descs[0], key)
    bag = prop.find(_q(RDF, "Bag"))
    if bag is None:
        bag = prop.find(_q(RDF, "Seq"))
    if bag is None:
        bag = ET.SubElement(prop, _q(RDF, "Bag"))
    for li in bag.findall(_q(RDF, "li")):
        if (li.text or "").startswith(own):
            bag.remove(li)
    for w in words:
        ET.SubElement(bag, _q(RDF, "li")).text = w


def merge(existing: bytes | None, marks: Marks, where: str = "") -> tuple[str, list[str]]:
    """The sidecar's new text, and notes on what was kept (a rating or label set by hand).
    Only imagion's fields change; SidecarError when `existing` is not an XMP document."""
    if existing is None or not existing.strip():
        root, prefixes = _new_document(), list[tuple[str, str]]()
    else:
        root, prefixes = _parse(existing)
    descs = _descriptions(root)
    kept: list[str] = []
    first = descs[0]
    for name, mine, value in (
        ("Rating", "Rating", str(marks.rating)),
        ("Label", "Label", marks.label),
    ):
        theirs, wrote = _value(descs, XMP, name), _value(descs, IMAGION, mine)
        by_hand = theirs not in (None, "", "0") and theirs != wrote
        if by_hand:
            kept.append(
                f"{where}: kept its {name.lower()} {theirs!r} (set by hand, not by imagion)"
            )
            _remove(descs, IMAGION, mine)
            continue
        _remove(descs, XMP, name)
        _remove(descs, IMAGION, mine)
        if value is not None:
            first.set(_q(XMP, name), value)
            first.set(_q(IMAGION, mine), value)
    own = {
        "Score": score_text(marks.score),
        "ScoreLow": None if marks.low is None else score_text(marks.low),
        "ScoreHigh": None if marks.high is None else score_text(marks.high),
        "Place": str(marks.place),
        "Of": str(marks.of),
        "Group": None if marks.group is None else str(marks.group),
        "Picked": "True" if marks.picked else "False",
        "Model": marks.model or None,
    }
    for name, value in own.items():
        _remove(descs, IMAGION, name)
        if value is not None:
            first.set(_q(IMAGION, name), value)
    _set_bag(descs, DC, "subject", marks.keywords, KEYWORD + " ")
    _set_bag(
        descs, LR, "hierarchicalSubject", [f"{KEYWORD}|{w}" for w in marks.keywords], KEYWORD + "|"
    )
    if existing is None:
        ET.indent(root, space=" ")
    with _LOCK:
        for prefix, uri in [*PREFIXES.items(), *prefixes]:
            # "ns0"-like prefixes and the default namespace stay ElementTree's own
            with contextlib.suppress(ValueError):
                ET.register_namespace(prefix, uri)
        text = ET.tostring(root, encoding="unicode")
    head = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    if existing is not None and existing.lstrip().startswith(b"<?xpacket"):
        return head + text + '\n<?xpacket end="w"?>\n', kept
    return text + "\n", kept


def _read_existing(path: Path) -> bytes | None:
    """The sidecar's bytes (None: there is none); SidecarError when imagion leaves it alone."""
    if path.is_symlink():
        raise SidecarError("is a symbolic link; imagion writes no file through a link")
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise SidecarError("is not a regular file")
    if not st.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise SidecarError("is read-only; imagion leaves it as it is")
    if st.st_size > MAX_SIDECAR_BYTES:
        raise SidecarError(f"is {st.st_size:,} bytes, more than a sidecar ever is")
    return path.read_bytes()


def _one_per_sidecar(
    marks: Sequence[Marks], naming: XmpNaming, report: SidecarReport
) -> list[tuple[Path, Marks]]:
    """Each sidecar once: where two photos share one (IMG_0001.CR2 and IMG_0001.JPG under the
    adobe naming), the RAW file's marks, else the better-placed photo's, and a note."""
    chosen: dict[Path, Marks] = {}
    for m in sorted(marks, key=lambda m: (m.photo.suffix.lower() not in RAW_SUFFIXES, m.place)):
        side = sidecar_path(m.photo, naming)
        if side in chosen:
            report.problems.append(
                f"{m.photo}: shares the sidecar {side.name} with {chosen[side].photo.name}, "
                f"which it was written for (`xmp_naming` darktable writes one per file)."
            )
            continue
        chosen[side] = m
    return sorted(chosen.items(), key=lambda kv: kv[1].place)


def write_sidecars(
    marks: Sequence[Marks],
    naming: XmpNaming | str = XmpNaming.adobe,
    dry_run: bool = False,
) -> SidecarReport:
    """Write (merge) the XMP sidecar of each photo; a sidecar imagion cannot or will not write
    (not XML, read-only, a symbolic link, a folder it cannot write to) is one problem line
    naming it, and the others are still written. `dry_run`: nothing written, the plan kept."""
    naming = choice(XmpNaming, naming, "xmp_naming")
    report = SidecarReport(dry_run=dry_run)
    for side, m in _one_per_sidecar(marks, naming, report):
        try:
            existing = _read_existing(side)
            text, kept = merge(existing, m, str(side))
            report.kept.extend(kept)
            report.planned.append((side, m, existing is not None))
            if not dry_run:
                write_text_atomic(side, text)
                report.written.append(side)
        except SidecarError as exc:
            report.problems.append(f"{side}: {exc}; not written.")
        except OSError as exc:
            report.problems.append(f"{side}: cannot write it ({exc.strerror or exc}); not written.")
    return report


def _model_name(model: str) -> str:
    return Path(model).name if model else ""


def marks_of_ranking(
    items: Sequence[Ranked], model: str = "", of: int | None = None
) -> list[Marks]:
    """Marks for ranked photos (best first): stars by place among `of` (default: all of them)."""
    total = of or len(items)
    name = _model_name(model)
    return [
        Marks(r.path, r.score, k, total, r.low, r.high, model=name) for k, r in enumerate(items, 1)
    ]


def marks_of_groups(
    groups: Sequence[Group], model: str = "", picked: Sequence[Path] = ()
) -> list[Marks]:
    """Marks for photos in groups of near-duplicates (rank --groups, pick): stars by place among
    all of them, the group as a keyword, and the `picked` photos labelled."""
    shots = sorted(((r, g.number) for g in groups for r in g.shots), key=lambda t: -t[0].score)
    chosen, name = set(picked), _model_name(model)
    return [
        Marks(r.path, r.score, k, len(shots), r.low, r.high, n, r.path in chosen, name)
        for k, (r, n) in enumerate(shots, 1)
    ]
