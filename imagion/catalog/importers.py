"""Read posts people already have on disk: instaloader folders, profilecrawl JSON, CSV manifests."""

from __future__ import annotations

import csv
import json
import lzma
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from imagion.catalog.store import Catalog, Post
from imagion.errors import ImagionError
from imagion.images import IMAGE_SUFFIXES, probe_image, sha256_file

CSV_REQUIRED = ("account", "image", "likes", "posted_at")
HASHTAG = re.compile(r"#(\w+)", re.UNICODE)
SHORTCODE = re.compile(r"/p/([^/?#]+)")
MAX_COUNT = 10**12  # likes, comments, followers: more than this is a broken value
MAX_TIME = 4_102_444_800  # 2100-01-01: later Unix times are broken values
MS_RANGE = (100_000_000_000, MAX_TIME * 1000)  # Unix times in milliseconds (1973–2100)
MAX_JSON_BYTES = 64 * 2**20  # an instaloader post is ~10 KB, a profilecrawl profile ~1 MB
MAX_CSV_ERRORS = 100
MAX_DUPLICATES_SHOWN = 20


def _number(value: object, name: str) -> float | int:
    """A finite number from JSON or CSV text; ValueError with the reason otherwise."""
    raw = value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} {raw!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} {raw!r} is not a finite number")
    return value


def count_value(value: object, name: str, *, hidden: int | None = None) -> int | None:
    """A whole, non-negative count (likes, comments, followers); None when missing.

    `hidden` is the one negative value a format documents as "hidden" (instaloader's -1): it
    comes back as -1. Anything else fractional, negative or absurd raises ValueError."""
    if value is None or value == "":
        return None
    number = _number(value, name)
    if number != int(number):
        raise ValueError(f"{name} {value!r} is not a whole number")
    number = int(number)
    if hidden is not None and number == hidden:
        return -1
    if not 0 <= number <= MAX_COUNT:
        raise ValueError(f"{name} {value!r} is out of range (0 to {MAX_COUNT:,})")
    return number


def time_value(value: object, name: str = "posted_at") -> int | None:
    """Unix seconds from a number (seconds, or milliseconds: detected) or an ISO 8601 date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(_number(value, name))
    except ValueError as exc:
        if not isinstance(value, str) or "finite" in str(exc):
            raise
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} {value!r} is not a date") from None
        seconds = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    else:
        if MS_RANGE[0] <= seconds < MS_RANGE[1]:
            seconds /= 1000.0  # milliseconds since 1970
    if not 0 <= seconds < MAX_TIME:
        raise ValueError(f"{name} {value!r} is out of range (1970 to 2100, in seconds or milliseconds)")
    return int(seconds)


def _optional_count(value: object, name: str, where: str, problems: list[str]) -> int | None:
    """A secondary count (comments, followers): -1 (hidden) is unknown; a bad value is reported
    and left empty."""
    try:
        number = count_value(value, name, hidden=-1)
        return None if number == -1 else number
    except ValueError as exc:
        problems.append(f"{where}: {exc}; stored as unknown.")
        return None


def _tag_list(value: object) -> list[str]:
    """Hashtags from a list of tags or from one string of them ("#sun #sea", "sun, sea")."""
    if isinstance(value, str):
        items: list[object] = re.findall(r"[^\s,#]+", value)
    elif isinstance(value, list):
        items = value
    else:
        items = []
    return sorted({str(t).strip().lstrip("#").lower() for t in items if str(t).strip("# ")})


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


def _hashtags(text: str | None) -> list[str]:
    return sorted({t.lower() for t in HASHTAG.findall(text or "")})


def _attach_image(post: Post, path: Path, problems: list[str]) -> None:
    """Link an image to a post if it is a readable image; otherwise say why and keep the post."""
    try:
        post.width, post.height = probe_image(path)
    except ImagionError as exc:
        problems.append(f"{exc} The post is kept without an image.")
        return
    post.image = str(path.resolve())
    post.image_sha256 = sha256_file(path)


def _read_json(path: Path) -> object:
    """Parse a .json or .json.xz file, refusing anything that expands past MAX_JSON_BYTES."""
    limit = f"{MAX_JSON_BYTES // 2**20} MiB"
    try:
        if path.name.lower().endswith(".xz"):
            with lzma.open(path, "rb") as f:
                raw = f.read(MAX_JSON_BYTES + 1)
        elif path.stat().st_size > MAX_JSON_BYTES:
            raise ImagionError(f"{path}: larger than {limit}; not a post or profile file (skipped).")
        else:
            raw = path.read_bytes()
        if len(raw) > MAX_JSON_BYTES:
            raise ImagionError(f"{path}: expands to more than {limit}; not a post or profile file (skipped).")
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ImagionError(f"{path}: JSON nested too deeply to be a post (skipped).") from None
    except (lzma.LZMAError, EOFError) as exc:
        raise ImagionError(f"{path}: damaged or truncated .xz file ({exc}).") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImagionError(f"{path}: not valid JSON ({exc}).") from exc
    except OSError as exc:
        raise ImagionError(f"{path}: cannot read ({exc}).") from exc


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".json.xz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _find_sibling(folder: Path, stem: str) -> tuple[Path | None, bool]:
    """The post's image next to its metadata: `<stem>.jpg`, or `<stem>_1.jpg` for a carousel."""
    for carousel, base in ((False, stem), (True, f"{stem}_1")):
        for ext in IMAGE_SUFFIXES:
            for candidate in (folder / f"{base}{ext}", folder / f"{base}{ext.upper()}"):
                if candidate.is_file():
                    return candidate, carousel
    return None, False


def _refuse(where: str, exc: ValueError) -> ImagionError:
    return ImagionError(f"{where}: {exc}; post skipped.")


def parse_instaloader(path: Path, data: dict, problems: list[str]) -> Post:
    node = data.get("node") if isinstance(data, dict) else None
    kind = (data.get("instaloader") or {}).get("node_type") if isinstance(data, dict) else None
    if not isinstance(node, dict) or "shortcode" not in node or kind not in (None, "Post"):
        raise ImagionError(
            f"{path}: not an Instagram post (no node.shortcode; {kind or 'unknown'})."
        )
    like = (node.get("edge_media_preview_like") or {}).get("count")
    if like is None:
        like = (node.get("edge_liked_by") or {}).get("count")
    try:
        likes = count_value(like, "likes", hidden=-1)
        posted_at = time_value(node.get("taken_at_timestamp"), "taken_at_timestamp")
    except ValueError as exc:
        raise _refuse(str(path), exc) from None
    owner = node.get("owner") or {}
    account = owner.get("username") or path.parent.name
    stem = _stem(path)
    caption_edges = (node.get("edge_media_to_caption") or {}).get("edges") or []
    caption = caption_edges[0].get("node", {}).get("text") if caption_edges else None
    txt = path.parent / f"{stem}.txt"
    if caption is None and txt.is_file():
        caption = txt.read_text(encoding="utf-8", errors="replace")
    is_video = bool(node.get("is_video")) or node.get("__typename") == "GraphVideo"
    where = str(path)
    post = Post(
        account=str(account),
        post_id=str(node["shortcode"]),
        source=str(path.resolve()),
        source_format="instaloader",
        likes=likes if likes is not None and likes >= 0 else None,
        likes_hidden=likes is None or likes < 0,
        comments=_optional_count((node.get("edge_media_to_comment") or {}).get("count"), "comments", where, problems),
        posted_at=posted_at,
        followers=_optional_count((owner.get("edge_followed_by") or {}).get("count"), "followers", where, problems),
        owner_id=str(owner["id"]) if owner.get("id") else None,
        caption=caption if isinstance(caption, str) else None,
        alt_text=node.get("accessibility_caption") if isinstance(node.get("accessibility_caption"), str) else None,
        tags=json.dumps(_hashtags(caption if isinstance(caption, str) else None)),
        is_video=is_video,
        is_carousel=node.get("__typename") == "GraphSidecar",
        extra={"where": where},
    )  # fmt: skip
    if is_video:
        return post
    image, carousel = _find_sibling(path.parent, stem)
    post.is_carousel = post.is_carousel or carousel
    if image is None:
        problems.append(
            f"{path}: image file is missing (looked for {stem}.jpg/.png/.webp and {stem}_1.*); "
            "the post is kept without an image."
        )
    else:
        _attach_image(post, image, problems)
    return post


def parse_profilecrawl(path: Path, data: dict, problems: list[str]) -> list[Post]:
    account = str(data.get("alias") or path.stem)
    followers = _optional_count(data.get("numberFollowers"), "numberFollowers", str(path), problems)
    source = str(path.resolve())
    posts: list[Post] = []
    for i, item in enumerate(data.get("posts") or []):
        if not isinstance(item, dict):
            problems.append(f"{path}: post #{i} is not an object; skipped.")
            continue
        m = SHORTCODE.search(str(item.get("url") or ""))
        post_id = m.group(1) if m else str(item.get("filename") or i)
        where = f"{path}: post #{i} ({post_id})"
        try:
            likes = count_value(item.get("numberLikes"), "numberLikes", hidden=-1)
            # the crawler writes 1970-01-01 when it did not know the date
            posted_at = time_value(item.get("date"), "date") or None
        except ValueError as exc:
            problems.append(f"{where}: {exc}; post skipped.")
            continue
        caption = item.get("description")
        post = Post(
            account=account,
            post_id=post_id,
            source=source,
            source_format="profilecrawl",
            likes=likes if likes is not None and likes >= 0 else None,
            likes_hidden=likes is None or likes < 0,
            posted_at=posted_at,
            followers=followers,
            caption=caption if isinstance(caption, str) else None,
            tags=json.dumps(_tag_list(item.get("tags"))),
            is_video=bool(item.get("isVideo")),
            is_carousel=bool(item.get("multipleImage")),
            extra={"where": where},
        )
        filename = item.get("filename")
        if isinstance(filename, list):  # carousels list every slide: use the first
            filename = filename[0] if filename else None
        if (
            isinstance(filename, str)
            and filename
            and not post.is_video
            and (path.parent / filename).is_file()
        ):
            _attach_image(post, path.parent / filename, problems)
        posts.append(post)
    return posts


def _csv_rows(path: Path, problems: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV manifest; malformed rows are reported and skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in CSV_REQUIRED if c not in header]
            if missing:
                raise ImagionError(
                    f"{path}: CSV lacks column(s) {', '.join(missing)} "
                    f"(needs {', '.join(CSV_REQUIRED)}; optional followers, caption, post_id)."
                )
            errors = 0
            while errors <= MAX_CSV_ERRORS:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    errors += 1
                    problems.append(f"{path}:{reader.line_num}: malformed CSV ({exc}); row skipped.")
                    continue
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    errors += 1
                    problems.append(f"{path}:{reader.line_num}: {len(cells)} fields where the header has "
                                    f"{len(header)} (an unquoted comma?); row skipped.")  # fmt: skip
                    continue
                yield reader.line_num, dict(zip(header, (c.strip() for c in cells), strict=True))
            problems.append(f"{path}: more than {MAX_CSV_ERRORS} malformed rows; the rest of the file is skipped.")
    except UnicodeDecodeError as exc:
        raise ImagionError(f"{path}: not a UTF-8 CSV file ({exc}).") from exc


def _csv_post(path: Path, where: str, row: dict[str, str], problems: list[str]) -> Post | None:
    if not row["account"] or not row["image"]:
        problems.append(f"{where}: empty account or image; row skipped.")
        return None
    try:
        likes = count_value(row["likes"], "likes")
        if likes is None:
            raise ValueError("likes is empty")
    except ValueError as exc:
        problems.append(f"{where}: {exc}; row skipped.")
        return None
    try:
        posted_at = time_value(row["posted_at"])
    except ValueError as exc:
        if "out of range" in str(exc):
            problems.append(f"{where}: {exc}; row skipped.")
            return None
        problems.append(f"{where}: posted_at {row['posted_at']!r} is not a date; kept empty.")
        posted_at = None
    return Post(
        account=row["account"],
        post_id=row.get("post_id") or row["image"],
        source=str(path.resolve()),
        source_format="csv",
        likes=likes,
        likes_hidden=False,
        posted_at=posted_at,
        followers=_optional_count(row.get("followers"), "followers", where, problems),
        caption=row.get("caption") or None,
        tags=json.dumps(_hashtags(row.get("caption"))),
        extra={"where": where},
    )


def parse_csv(path: Path, problems: list[str]) -> list[Post]:
    posts = []
    for line, row in _csv_rows(path, problems):
        post = _csv_post(path, f"{path}:{line}", row, problems)
        if post is not None:
            _attach_image(post, (path.parent / row["image"]), problems)
            posts.append(post)
    return posts


def _is_metadata(path: Path) -> bool:
    return path.name.lower().endswith((".json", ".json.xz")) and not path.name.startswith(".")


def _read_source_file(path: Path, problems: list[str]) -> Iterator[Post]:
    if path.suffix.lower() == ".csv":
        yield from parse_csv(path, problems)
        return
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("posts"), list) and "alias" in data:
        yield from parse_profilecrawl(path, data, problems)
    elif isinstance(data, dict) and "node" in data:
        yield parse_instaloader(path, data, problems)
    else:
        raise ImagionError(
            f"{path}: JSON is neither an instaloader post nor a profilecrawl profile."
        )


def discover(sources: list[str | Path], report: ImportReport) -> list[Path]:
    """Source files under the given paths (folders are searched recursively)."""
    files: list[Path] = []
    for raw in sources:
        p = Path(raw)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            found = sorted(
                q for q in p.rglob("*") if q.is_file() and (_is_metadata(q) or q.suffix.lower() == ".csv")
            )
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
    sources: list[str | Path],
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
        report.problems.append(f"{report.duplicates:,} duplicate posts in all (the first "
                               f"{MAX_DUPLICATES_SHOWN} are listed); the later one of each is kept.")  # fmt: skip
    if posts:
        report.inserted, report.updated = catalog.upsert_posts(posts.values())
    report.posts = len(posts)
    report.accounts = len({a for a, _ in posts})
    report.with_image = sum(p.image is not None for p in posts.values())
    return report
