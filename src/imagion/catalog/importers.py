"""Read posts people already have on disk: instaloader folders, profilecrawl JSON, CSV manifests,
and Instagram's own exports ("Download your information", folder or .zip, and the content CSV of
the professional dashboard, joined to the export's images)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from imagion.catalog.content_csv import ContentRow, content_rows, is_content_export
from imagion.catalog.export_join import JoinReport, join, parse_timezone
from imagion.catalog.export_tree import ExportTree, folder_exports, inside, zip_exports
from imagion.catalog.formats import (
    csv_posts,
    csv_table,
    parse_instaloader,
    parse_profilecrawl,
    read_json,
)
from imagion.catalog.instagram_export import name_accounts, read_export
from imagion.catalog.store import POST_COLUMNS, Catalog, Post
from imagion.errors import ImagionError, InputError
from imagion.files import NOT_REGULAR, walk_files
from imagion.problems import ProblemLog
from imagion.progress import Progress

MAX_DUPLICATES_SHOWN = 20
# a post's whole-number and yes/no fields (SQLite and pandas give them back as floats and 0/1)
INT_FIELDS = frozenset(f.name for f in fields(Post) if f.type == "int | None")
BOOL_FIELDS = frozenset(f.name for f in fields(Post) if f.type == "bool")


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    posts: int = 0
    accounts: int = 0
    with_image: int = 0
    by_format: dict[str, int] = field(default_factory=dict)
    problems: ProblemLog = field(default_factory=ProblemLog)  # the first 50, and a count
    bad_arguments: list[str] = field(default_factory=list)
    duplicates: int = 0
    exports: int = 0
    content_csvs: int = 0
    joined: JoinReport | None = None
    notes: list[str] = field(default_factory=list)
    no_catalog: bool = False  # nothing was imported into a new catalog: none was left behind

    def to_dict(self) -> dict:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "posts": self.posts,
            "accounts": self.accounts,
            "posts_with_image": self.with_image,
            "by_format": self.by_format,
            "duplicates": self.duplicates,
            "problems": self.problems.lines() + self.bad_arguments,
            "problem_count": self.problems.total + len(self.bad_arguments),
            "instagram_exports": self.exports,
            "content_csvs": self.content_csvs,
            "join": self.joined.to_dict() if self.joined else None,
            "notes": self.notes,
            "no_catalog": self.no_catalog,
        }


@dataclass
class Found:
    """What the import's arguments hold: post files, exports, content CSVs."""

    files: list[Path] = field(default_factory=list)
    exports: list[ExportTree] = field(default_factory=list)


def _is_metadata(path: Path) -> bool:
    return path.name.lower().endswith((".json", ".json.xz")) and not path.name.startswith(".")


def _read_source_file(
    path: Path, problems: list[str], content: list[tuple[Path, ContentRow]]
) -> Iterator[Post]:
    if path.suffix.lower() == ".csv":
        header, rows = csv_table(path, problems)
        if is_content_export(header):
            content.extend((path, row) for row in content_rows(path, header, rows, problems))
            return
        yield from csv_posts(path, header, rows, problems)
        return
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("posts"), list) and "alias" in data:
        yield from parse_profilecrawl(path, data, problems)
    elif isinstance(data, dict) and "node" in data:
        yield parse_instaloader(path, data, problems)
    else:
        keys = (
            ", ".join(sorted(map(str, data))[:8]) if isinstance(data, dict) else type(data).__name__
        )
        raise InputError(
            f"{path}: JSON is neither an instaloader post (node) nor a profilecrawl profile "
            f"(alias, posts) nor part of an Instagram export; found {keys or 'nothing'}."
        )


def _zip(path: Path, found: Found, report: ImportReport) -> None:
    try:
        found.exports.extend(zip_exports(path))
    except ImagionError as exc:
        report.problems.append(str(exc))


def _folder(p: Path, found: Found, report: ImportReport) -> None:
    every, unreadable = walk_files(p)
    report.problems.extend(unreadable)
    trees = folder_exports(p, every)
    found.exports.extend(trees)
    rest = [q for q in every if not any(inside(t, q) for t in trees)]
    zips = [q for q in rest if q.suffix.lower() == ".zip"]
    for z in zips:
        _zip(z, found, report)
    posts = [q for q in rest if _is_metadata(q) or q.suffix.lower() == ".csv"]
    if not posts and not trees and not zips:
        report.problems.append(
            f"{p}: no posts found (no instaloader .json/.json.xz, profilecrawl .json, "
            ".csv manifest or Instagram export inside)."
        )
    found.files.extend(posts)


def discover(sources: Sequence[str | Path], report: ImportReport) -> Found:
    """Source files and exports under the given paths (folders are searched recursively)."""
    found = Found()
    for raw in sources:
        p = Path(raw)
        if p.is_file() and p.suffix.lower() == ".zip":
            _zip(p, found, report)
        elif p.is_file():
            found.files.append(p)
        elif p.is_dir():
            _folder(p, found, report)
        elif p.exists():
            report.bad_arguments.append(f"{p}: {NOT_REGULAR}.")
        else:
            report.bad_arguments.append(f"{p}: no such file or folder.")
    return found


def _catalog_export_posts(catalog: Catalog) -> list[Post]:
    """The posts an export imported earlier put in the catalog, as posts again: a content CSV
    imported without its export is joined to them (its statistics update them) instead of
    adding each post a second time, keyed by its shortcode."""
    import math

    df = catalog.frame(POST_COLUMNS, "WHERE source_format = 'instagram-export'")
    posts = []
    for rec in df.to_dict("records"):
        values: dict[str, Any] = {
            k: None if isinstance(v, float) and math.isnan(v) else v for k, v in rec.items()
        }
        for k, v in values.items():
            if k in INT_FIELDS and v is not None:
                values[k] = int(v)
            elif k in BOOL_FIELDS:
                values[k] = bool(v)
        posts.append(Post(**values, extra={"where": values["source"], "from_catalog": True}))
    return posts


def _exports(
    catalog: Catalog,
    found: Found,
    content: list[tuple[Path, ContentRow]],
    timezone: str | None,
    report: ImportReport,
) -> list[Post]:
    """The posts of every export, with the content CSVs' statistics joined to them."""
    results = [read_export(tree, report.problems) for tree in found.exports]
    report.notes.extend(n for tree in found.exports if (n := tree.budget_note()))
    csv_accounts = sorted({row.account for _, row in content if row.account})
    name_accounts(results, csv_accounts[0] if len(csv_accounts) == 1 else None)
    export_posts = [post for r in results for post in r.posts]
    posts = export_posts
    if content:
        base = export_posts or _catalog_export_posts(catalog)
        posts, report.joined = join(base, content, timezone, report.problems)
        report.notes.extend(report.joined.notes)
        # of the catalog's own posts, only those a row matched change (their scores too)
        posts = [p for p in posts if not p.extra.get("from_catalog") or "replaces" in p.extra]
    no_likes = sum(1 for p in export_posts if p.image is not None and p.likes is None)
    if no_likes:
        report.notes.append(
            f"{no_likes:,} photo posts of the export have no like count: a personal account's "
            "export holds none, a professional account's insights cover about two years; add the "
            "content CSV of the professional dashboard to the same import."
        )
    return posts


BATCH = 5_000  # posts written at a time: a 300,000-row manifest is never held whole


class _Writer:
    """Posts written to the catalog in batches, inside the import's one transaction; a post read
    twice (the same account and post id) is a duplicate, and the later one is kept. Only each
    post's key, where it came from and whether it has an image stay in memory."""

    def __init__(self, catalog: Catalog, db: sqlite3.Connection, report: ImportReport) -> None:
        self.catalog, self.db, self.report = catalog, db, report
        self.seen: dict[tuple[str, str], tuple[str, bool]] = {}
        self.batch: list[Post] = []
        self.merged = 0

    def add(self, post: Post, where: object) -> None:
        report, key = self.report, (post.account, post.post_id)
        here = str(post.extra.get("where", where))
        if key in self.seen:
            report.duplicates += 1
            if report.duplicates <= MAX_DUPLICATES_SHOWN:
                report.problems.append(
                    f"{here}: post {post.account}/{post.post_id} also read from "
                    f"{self.seen[key][0]}; the later one is kept."
                )
        self.seen[key] = (here, post.image is not None)
        report.by_format[post.source_format] = report.by_format.get(post.source_format, 0) + 1
        self.batch.append(post)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        superseded = [
            (post.account, post.extra["replaces"])
            for post in self.batch
            if post.extra.get("replaces") and post.extra["replaces"] != post.post_id
        ]
        inserted, _, merged = self.catalog.upsert_in(self.db, self.batch, superseded)
        self.report.inserted += inserted
        self.merged += merged
        self.batch = []


def import_sources(
    catalog: Catalog,
    sources: Sequence[str | Path],
    progress: Progress | None = None,
    timezone: str | None = None,
) -> ImportReport:
    """Import every source into the catalog in one transaction; problems are collected, not raised.

    `timezone` (an IANA name) says how to read a content CSV's local publish times; without it
    the offset is inferred from an export given in the same call."""
    parse_timezone(timezone)
    report = ImportReport()
    found = discover(sources, report)
    content: list[tuple[Path, ContentRow]] = []
    total = len(found.files) + len(found.exports)
    with catalog.transaction() as db:
        out = _Writer(catalog, db, report)
        for i, path in enumerate(found.files):
            before = len(content)
            try:
                for post in _read_source_file(path, report.problems, content):
                    out.add(post, path)
            except ImagionError as exc:
                report.problems.append(str(exc))
            report.content_csvs += len(content) > before
            if progress:
                progress(i + 1, total)
        report.exports = len(found.exports)
        out.flush()  # the export join reads the catalog's earlier export posts
        for post in _exports(catalog, found, content, timezone, report):
            out.add(post, post.source)
        out.flush()
    if progress:
        progress(total, total)
    if report.duplicates > MAX_DUPLICATES_SHOWN:
        report.problems.append(
            f"{report.duplicates:,} duplicate posts in all (the first "
            f"{MAX_DUPLICATES_SHOWN} are listed); the later one of each is kept."
        )
    if out.merged:
        report.notes.append(
            f"{out.merged:,} posts imported earlier from the content CSV alone now carry their "
            "export image (merged into one post each)."
        )
    report.posts = len(out.seen)
    report.updated = report.posts - report.inserted  # each distinct post counted once, as ever
    report.accounts = len({a for a, _ in out.seen})
    report.with_image = sum(has_image for _, has_image in out.seen.values())
    return report
