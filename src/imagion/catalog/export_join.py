"""Join a content CSV's statistics to the images of a "Download your information" export of the
same account: by publish time (the CSV's is local time, to the minute; the export's is UTC, to
the second), within TOLERANCE_S, with the caption to tell apart posts published together."""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from imagion.catalog.content_csv import ContentRow
from imagion.catalog.instagram_export import has_metrics, set_metric
from imagion.catalog.store import Post
from imagion.catalog.values import hashtags
from imagion.errors import OptionError

TOLERANCE_S = 120  # the CSV's minute, and the seconds between upload and publication
OFFSETS = np.arange(-12 * 3600, 14 * 3600 + 1, 900)  # every UTC offset in use, in 15 minutes
CAPTION_KEY = 40


@dataclass
class JoinReport:
    matched: int = 0
    csv_without_image: int = 0
    images_without_metrics: int = 0
    timezone: str | None = None  # how the CSV's local times were read
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "matched": self.matched,
            "csv_rows_without_image": self.csv_without_image,
            "images_without_metrics": self.images_without_metrics,
            "csv_timezone": self.timezone,
        }


def parse_timezone(name: str | None) -> tzinfo | None:
    """An IANA time zone ("Europe/Berlin") or None; ImagionError naming the parameter."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionError(
            "timezone",
            repr(name),
            "not a time zone name (use one like Europe/Berlin or America/New_York, as the "
            "account's Instagram settings show it).",
        ) from None


def _caption_key(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).casefold()
    return re.sub(r"\s+", " ", text).strip()[:CAPTION_KEY]


def _agree(a: str | None, b: str | None) -> bool:
    ka, kb = _caption_key(a), _caption_key(b)
    return not ka or not kb or ka.startswith(kb) or kb.startswith(ka)


def _as_utc(dt: datetime) -> int:
    """Seconds of a naive local time read as if it were UTC (the offset is applied later)."""
    return int(dt.replace(tzinfo=UTC).timestamp()) if dt.tzinfo is None else int(dt.timestamp())


def infer_offset(rows: list[ContentRow], times: np.ndarray) -> tuple[int, int]:
    """The UTC offset (seconds) under which most CSV times land on an export post; (offset, hits)."""
    naive = np.array([_as_utc(r.published) for r in rows if r.published and not r.published.tzinfo])
    if not len(naive) or not len(times):
        return 0, 0
    best, hits = 0, -1
    for off in sorted(OFFSETS.tolist(), key=abs):
        t = naive - off
        k = np.searchsorted(times, t)
        below = times[np.clip(k - 1, 0, len(times) - 1)]
        above = times[np.clip(k, 0, len(times) - 1)]
        near = np.minimum(np.abs(below - t), np.abs(above - t))
        n = int((near <= TOLERANCE_S).sum())
        if n > hits:
            best, hits = off, n
    return best, hits


def _utc_times(row: ContentRow, tz: tzinfo | None, offset: int | None) -> list[int]:
    """The UTC times a row may mean: exact with a zone; the inferred offset, then ±1 h for
    daylight saving; UTC when nothing else is known."""
    dt = row.published
    if dt is None:
        return []
    if dt.tzinfo is not None:
        return [int(dt.timestamp())]
    if tz is not None:
        return [int(dt.replace(tzinfo=tz).timestamp())]
    base = _as_utc(dt) - (offset or 0)
    return [base] if offset is None else [base, base - 3600, base + 3600]


def _describe_offset(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    h, m = divmod(abs(seconds) // 60, 60)
    return f"UTC{sign}{h:02d}:{m:02d}"


class _Pool:
    """The export's posts that a CSV row may match, indexed by time: each row looks only at the
    posts within TOLERANCE_S of it (not at every post), and each post matches at most once."""

    def __init__(self, posts: list[Post]) -> None:
        dated = sorted((p.posted_at, k) for k, p in enumerate(posts) if p.posted_at is not None)
        self.posts = posts
        self.times = [t for t, _ in dated]
        self.order = [k for _, k in dated]
        self.used: set[int] = set()

    def match(self, row: ContentRow, when: list[int]) -> Post | None:
        for t in when:
            lo = bisect.bisect_left(self.times, t - TOLERANCE_S)
            hi = bisect.bisect_right(self.times, t + TOLERANCE_S)
            best: tuple[int, int] | None = None  # (gap, position in the export): the nearest
            for k in self.order[lo:hi]:
                post = self.posts[k]
                if k in self.used or not _agree(row.caption, post.caption):
                    continue
                if row.account and post.account and row.account.lower() != post.account.lower():
                    continue
                gap = abs((post.posted_at or 0) - t)
                if best is None or (gap, k) < best:
                    best = (gap, k)
            if best is not None:
                self.used.add(best[1])
                return self.posts[best[1]]
        return None


def _row_post(row: ContentRow, path: Path, account: str, when: list[int]) -> Post:
    return Post(
        account=account,
        post_id=row.post_id,
        source=str(path.resolve()),
        source_format="content-csv",
        likes_hidden=True,
        posted_at=when[0] if when else None,
        caption=row.caption,
        tags=json.dumps(hashtags(row.caption)),
        is_video=row.kind == "video",
        is_carousel=row.kind == "carousel",
        extra={"where": row.where},
    )


def join(
    export_posts: list[Post],
    csv_rows: list[tuple[Path, ContentRow]],
    timezone: str | None,
    problems: list[str],
) -> tuple[list[Post], JoinReport]:
    """The export's posts with the CSV's statistics on them, plus a post (no image) for each CSV
    row that matches no image of the export."""
    report = JoinReport()
    tz = parse_timezone(timezone)
    offset: int | None = None
    if tz is not None:
        report.timezone = str(timezone)
    elif csv_rows and export_posts:
        times = np.sort(
            np.array([p.posted_at for p in export_posts if p.posted_at], dtype=np.int64)
        )
        offset, hits = infer_offset([r for _, r in csv_rows], times)
        report.timezone = (
            f"{_describe_offset(offset)} (inferred: {hits:,} of {len(csv_rows):,} rows line up)"
        )
    elif csv_rows:
        report.timezone = "UTC (assumed)"
        report.notes.append(
            "the content CSV's publish times were read as UTC: no export to align them with; "
            "pass timezone (`timezone` Europe/Berlin) for the account's time zone."
        )
    accounts = sorted({p.account for p in export_posts if p.account})
    pool = _Pool([p for p in export_posts if p.image is not None or p.is_video])
    out = list(export_posts)
    for path, row in csv_rows:
        when = _utc_times(row, tz, offset)
        post = pool.match(row, when)
        if post is None:
            account = row.account or (accounts[0] if len(accounts) == 1 else path.stem)
            post = _row_post(row, path, account, when)
            out.append(post)
            if not post.is_video:
                report.csv_without_image += 1
        else:
            report.matched += 1
            post.extra["replaces"] = row.post_id  # its key when the CSV was imported alone
        for column, value in row.metrics.items():
            set_metric(post, column, value, row.where, problems)
    report.images_without_metrics = sum(
        1 for p in export_posts if p.image is not None and not has_metrics(p)
    )
    return out, report
