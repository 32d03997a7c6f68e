"""Read posts people already have on disk: instaloader folders, profilecrawl JSON, CSV manifests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imagion.catalog.formats import parse_csv, parse_instaloader, parse_profilecrawl, read_json
from imagion.catalog.store import Catalog, Post
from imagion.errors import ImagionError
from imagion.files import walk_files

MAX_DUPLICATES_SHOWN = 20


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    posts: int = 0
    accounts: int = 0
    with_image: int = 0
    by_format: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    bad_arguments: list[str] = field(default_factory=list)
    duplicates: int = 0

    def to_dict(self) -> dict:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "posts": self.posts,
            "accounts": self.accounts,
            "posts_with_image": self.with_image,
            "by_format": self.by_format,
            "duplicates": self.duplicates,
            "problems": self.problems + self.bad_arguments,
        }


def _is_metadata(path: Path) -> bool:
    return path.name.lower().endswith((".json", ".json.xz")) and not path.name.startswith(".")


def _read_source_file(path: Path, problems: list[str]) -> Iterator[Post]:
    if path.suffix.lower() == ".csv":
        yield from parse_csv(path, problems)
        return
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("posts"), list) and "alias" in data:
        yield from parse_profilecrawl(path, data, problems)
    elif isinstance(data, dict) and "node" in data:
        yield parse_instaloader(path, data, problems)
    else:
        raise ImagionError(
            f"{path}: JSON is neither an instaloader post nor a profilecrawl profile."
        )


def discover(sources: Sequence[str | Path], report: ImportReport) -> list[Path]:
    """Source files under the given paths (folders are searched recursively)."""
    files: list[Path] = []
    for raw in sources:
        p = Path(raw)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            every, unreadable = walk_files(p)
            report.problems.extend(unreadable)
            found = [q for q in every if _is_metadata(q) or q.suffix.lower() == ".csv"]
            if not found:
                report.problems.append(
                    f"{p}: no posts found (no instaloader .json/.json.xz, profilecrawl .json "
                    "or .csv manifest inside)."
                )
            files.extend(found)
        else:
            report.bad_arguments.append(f"{p}: no such file or folder.")
    return files


def import_sources(
    catalog: Catalog,
    sources: Sequence[str | Path],
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import every source into the catalog in one transaction; problems are collected, not raised."""
    report = ImportReport()
    files = discover(sources, report)
    posts: dict[tuple[str, str], Post] = {}
    for i, path in enumerate(files):
        try:
            for post in _read_source_file(path, report.problems):
                key = (post.account, post.post_id)
                if key in posts:
                    report.duplicates += 1
                    if report.duplicates <= MAX_DUPLICATES_SHOWN:
                        report.problems.append(
                            f"{post.extra.get('where', path)}: post {post.account}/{post.post_id} "
                            f"also read from {posts[key].extra.get('where')}; the later one is kept."
                        )
                posts[key] = post
                report.by_format[post.source_format] = (
                    report.by_format.get(post.source_format, 0) + 1
                )
        except ImagionError as exc:
            report.problems.append(str(exc))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            report.problems.append(f"{path}: unexpected structure, file skipped ({exc!r}).")
        if progress:
            progress(i + 1, len(files))
    if report.duplicates > MAX_DUPLICATES_SHOWN:
        report.problems.append(
            f"{report.duplicates:,} duplicate posts in all (the first "
            f"{MAX_DUPLICATES_SHOWN} are listed); the later one of each is kept."
        )
    if posts:
        report.inserted, report.updated = catalog.upsert_posts(posts.values())
    report.posts = len(posts)
    report.accounts = len({a for a, _ in posts})
    report.with_image = sum(p.image is not None for p in posts.values())
    return report
