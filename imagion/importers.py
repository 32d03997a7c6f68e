"""Read posts people already have on disk: instaloader folders, profilecrawl JSON, CSV manifests."""

from __future__ import annotations

import csv
import json
import lzma
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from imagion.catalog import Catalog, Post
from imagion.errors import ImagionError
from imagion.images import IMAGE_SUFFIXES, probe_image, sha256_file

CSV_REQUIRED = ("account", "image", "likes", "posted_at")
HASHTAG = re.compile(r"#(\w+)", re.UNICODE)
SHORTCODE = re.compile(r"/p/([^/?#]+)")


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

    def to_dict(self) -> dict:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "posts": self.posts,
            "accounts": self.accounts,
            "posts_with_image": self.with_image,
            "by_format": self.by_format,
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
    try:
        if path.name.endswith(".xz"):
            with lzma.open(path, "rt", encoding="utf-8") as f:
                return json.load(f)
        with open(path, encoding="utf-8") as f:
            return json.load(f)
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


def _int(value: object) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


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
    likes = _int(like)
    owner = node.get("owner") or {}
    account = owner.get("username") or path.parent.name
    stem = _stem(path)
    caption_edges = (node.get("edge_media_to_caption") or {}).get("edges") or []
    caption = caption_edges[0].get("node", {}).get("text") if caption_edges else None
    txt = path.parent / f"{stem}.txt"
    if caption is None and txt.is_file():
        caption = txt.read_text(encoding="utf-8", errors="replace")
    is_video = bool(node.get("is_video")) or node.get("__typename") == "GraphVideo"
    post = Post(
        account=account,
        post_id=str(node["shortcode"]),
        source=str(path.resolve()),
        source_format="instaloader",
        likes=likes,
        likes_hidden=likes is None or likes < 0,
        comments=_int((node.get("edge_media_to_comment") or {}).get("count")),
        posted_at=_int(node.get("taken_at_timestamp")),
        followers=_int((owner.get("edge_followed_by") or {}).get("count")),
        owner_id=str(owner["id"]) if owner.get("id") else None,
        caption=caption,
        alt_text=node.get("accessibility_caption"),
        tags=json.dumps(_hashtags(caption)),
        is_video=is_video,
        is_carousel=node.get("__typename") == "GraphSidecar",
    )
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


def _iso_to_unix(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return int(float(text))
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def parse_profilecrawl(path: Path, data: dict, problems: list[str]) -> list[Post]:
    account = str(data.get("alias") or path.stem)
    followers = _int(data.get("numberFollowers"))
    source = str(path.resolve())
    posts: list[Post] = []
    for i, item in enumerate(data.get("posts") or []):
        if not isinstance(item, dict):
            problems.append(f"{path}: post #{i} is not an object; skipped.")
            continue
        m = SHORTCODE.search(item.get("url") or "")
        likes = _int(item.get("numberLikes"))
        post = Post(
            account=account,
            post_id=m.group(1) if m else str(item.get("filename") or i),
            source=source,
            source_format="profilecrawl",
            likes=likes,
            likes_hidden=likes is None or likes < 0,
            # the crawler writes 1970-01-01 when it did not know the date
            posted_at=_iso_to_unix(str(item.get("date") or "")) or None,
            followers=followers,
            caption=item.get("description"),
            tags=json.dumps(sorted({str(t).lstrip("#").lower() for t in item.get("tags") or []})),
            is_video=bool(item.get("isVideo")),
            is_carousel=bool(item.get("multipleImage")),
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


def parse_csv(path: Path, problems: list[str]) -> list[Post]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in CSV_REQUIRED if c not in header]
            if missing:
                raise ImagionError(
                    f"{path}: CSV lacks column(s) {', '.join(missing)} "
                    f"(needs {', '.join(CSV_REQUIRED)}; optional followers, caption, post_id)."
                )
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise ImagionError(f"{path}: not a UTF-8 CSV file ({exc}).") from exc
    posts = []
    source = str(path.resolve())
    for line, raw in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        where = f"{path}:{line}"
        if not row["account"] or not row["image"]:
            problems.append(f"{where}: empty account or image; row skipped.")
            continue
        try:
            likes = int(float(row["likes"]))
        except ValueError:
            problems.append(f"{where}: likes {row['likes']!r} is not a number; row skipped.")
            continue
        posted_at = _iso_to_unix(row["posted_at"])
        if posted_at is None and row["posted_at"]:
            problems.append(f"{where}: posted_at {row['posted_at']!r} is not a date; kept empty.")
        post = Post(
            account=row["account"],
            post_id=row.get("post_id") or row["image"],
            source=source,
            source_format="csv",
            likes=likes,
            likes_hidden=likes < 0,
            posted_at=posted_at,
            followers=_int(row.get("followers") or None),
            caption=row.get("caption") or None,
            tags=json.dumps(_hashtags(row.get("caption"))),
        )
        _attach_image(post, (path.parent / row["image"]), problems)
        posts.append(post)
    return posts


def _is_metadata(path: Path) -> bool:
    return path.name.endswith((".json", ".json.xz")) and not path.name.startswith(".")


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
                q for q in p.rglob("*") if q.is_file() and (_is_metadata(q) or q.suffix == ".csv")
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
                posts[(post.account, post.post_id)] = post
                report.by_format[post.source_format] = (
                    report.by_format.get(post.source_format, 0) + 1
                )
        except ImagionError as exc:
            report.problems.append(str(exc))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            report.problems.append(f"{path}: unexpected structure, file skipped ({exc!r}).")
        if progress:
            progress(i + 1, len(files))
    if posts:
        report.inserted, report.updated = catalog.upsert_posts(posts.values())
    report.posts = len(posts)
    report.accounts = len({a for a, _ in posts})
    report.with_image = sum(p.image is not None for p in posts.values())
    return report
