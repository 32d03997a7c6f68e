"""The content export of Meta Business Suite / Instagram's professional dashboard (CSV): one row
per post with its lifetime statistics, no images.

Columns (English; exports in other languages translate them, German is known here): Post ID,
Account ID, Account username, Account name, Description, Duration (sec), Publish time,
Permalink, Post type, Data comment, Date, Views (older: Impressions), Reach, Likes, Shares,
Follows, Comments, Saves. A UTF-8 BOM; numbers with thousands separators ("12,400");
`Publish time` as MM/DD/YYYY HH:MM (German DD.MM.YYYY HH:MM) in the account's time zone;
`Post type` IG image / IG carousel / IG reel."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from imagion.catalog.instagram_export import METRIC_NAMES
from imagion.errors import InputError

SHORTCODE = re.compile(r"/(?:p|reel|tv)/([^/?#]+)")
# the catalog field each header names, by its normalized spelling (see _norm)
HEADERS = (
    {
        "post id": "post_id",
        "beitrags id": "post_id",
        "account username": "account",
        "konto benutzername": "account",
        "kontobenutzername": "account",
        "description": "caption",
        "beschreibung": "caption",
        "publish time": "publish_time",
        "veröffentlichungszeitpunkt": "publish_time",
        "veroffentlichungszeitpunkt": "publish_time",
        "permalink": "permalink",
        "post type": "post_type",
        "beitragstyp": "post_type",
        "date": "date",
        "datum": "date",
        "aufrufe": "impressions",
        "impressionen": "impressions",
        "reichweite": "reach",
        "gefällt mir angaben": "likes",
        "gefällt mir": "likes",
        "geteilte inhalte": "shares",
        "kommentare": "comments",
        "gespeicherte beiträge": "saves",
        "gespeichert": "saves",
        "profilaufrufe": "profile_visits",
        "follower": "follows",
    }
    | METRIC_NAMES  # the English metric names, matched without their spaces (header_fields)
)
REQUIRED = ("publish_time", "permalink")
MAX_ROWS_REPORTED = 20


def _norm(header: str) -> str:
    text = unicodedata.normalize("NFC", header).lower()
    text = re.sub(r"[\"'„“”‘’()\[\]]", "", text)
    return re.sub(r"[^\w]+", " ", text).strip()


def header_fields(header: list[str]) -> dict[str, int]:
    """Which column holds which field (the first of each), by its normalized name."""
    found: dict[str, int] = {}
    for i, name in enumerate(header):
        key = HEADERS.get(_norm(name)) or HEADERS.get(_norm(name).replace(" ", ""))
        if key and key not in found:
            found[key] = i
    return found


def is_content_export(header: list[str]) -> bool:
    """Whether a CSV header is a content export's (publish time and permalink, any language)."""
    fields = header_fields(header)
    return all(k in fields for k in REQUIRED)


def local_time(text: str) -> datetime | None:
    """The publish time as written (naive: the account's own time zone), or None."""
    text = text.strip()
    for fmt in ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class ContentRow:
    """One post of a content CSV, before it is joined to an export's images."""

    where: str
    account: str
    post_id: str
    published: datetime | None  # naive = the account's local time; aware when the CSV said so
    caption: str | None
    kind: str  # image, carousel, video
    metrics: dict[str, str] = field(default_factory=dict)


def _kind(text: str) -> str:
    low = text.lower()
    if "reel" in low or "video" in low:
        return "video"
    if "carousel" in low or "karussell" in low or "album" in low:
        return "carousel"
    return "image"


def content_rows(
    path: Path, header: list[str], rows: Iterable[tuple[int, list[str]]], problems: list[str]
) -> list[ContentRow]:
    """The rows of a content CSV; one line per row that cannot be read, the others kept."""
    fields = header_fields(header)
    wanted = set(METRIC_NAMES.values())
    metrics = {k: i for k, i in fields.items() if k in wanted}
    out: list[ContentRow] = []
    bad = 0

    def cell(cells: list[str], key: str) -> str:
        i = fields.get(key)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    for line, cells in rows:
        where = f"{path}:{line}"
        link = cell(cells, "permalink")
        m = SHORTCODE.search(link)
        post_id = m.group(1) if m else cell(cells, "post_id")
        published = local_time(cell(cells, "publish_time"))
        if not post_id or published is None:
            bad += 1
            if bad <= MAX_ROWS_REPORTED:
                what = (
                    "no permalink or post ID"
                    if not post_id
                    else (f"publish time {cell(cells, 'publish_time')!r} is not a date")
                )
                problems.append(f"{where}: {what}; row skipped.")
            continue
        out.append(
            ContentRow(
                where=where,
                account=cell(cells, "account").lstrip("@"),
                post_id=post_id,
                published=published,
                caption=cell(cells, "caption") or None,
                kind=_kind(cell(cells, "post_type")),
                metrics={k: cells[i] for k, i in metrics.items() if i < len(cells)},
            )
        )
    if bad > MAX_ROWS_REPORTED:
        problems.append(
            f"{path}: {bad:,} rows skipped in all (the first {MAX_ROWS_REPORTED} listed)."
        )
    if not out and not bad:
        raise InputError(f"{path}: a content export with no rows; nothing to import.")
    return out
