"""The formats `imagion import` reads: instaloader posts, instagram-profilecrawl profiles and
CSV manifests. Each parser returns posts and appends one line per problem; nothing raises for
one bad value."""

from __future__ import annotations

import csv
import json
import lzma
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from imagion.catalog.store import Post
from imagion.catalog.values import (
    OutOfRange,
    count_value,
    hashtags,
    optional_count,
    tag_list,
    time_value,
)
from imagion.errors import ImagionError, InputError
from imagion.images import IMAGE_SUFFIXES, probe_image, sha256_file

CSV_REQUIRED = ("account", "image", "likes", "posted_at")
SHORTCODE = re.compile(r"/p/([^/?#]+)")
MAX_JSON_BYTES = 16 * 2**20  # an instaloader post is ~10 KB, a profilecrawl profile ~1 MB;
# parsed JSON takes ~18× its size in memory, so this bounds one file at ~300 MB
MAX_CSV_ERRORS = 100


# what an image file gave: (width, height, resolved path, sha256), or why it could not be read
Checked = tuple[int, int, str, str] | str


def _attach_image(
    post: Post, path: Path, problems: list[str], seen: dict[Path, Checked] | None = None
) -> None:
    """Link an image to a post if it is a readable image; otherwise say why and keep the post.
    `seen` remembers each file checked and hashed already (a manifest whose 300,000 rows name
    a few images reads each once)."""
    checked = seen.get(path) if seen is not None else None
    if checked is None:
        try:
            w, h = probe_image(path)
            checked = (w, h, str(path.resolve()), sha256_file(path))
        except ImagionError as exc:
            checked = f"{exc} The post is kept without an image."
        if seen is not None:
            seen[path] = checked
    if isinstance(checked, str):
        problems.append(checked)
        return
    post.width, post.height, post.image, post.image_sha256 = checked


def read_json(path: Path) -> object:
    """Parse a .json or .json.xz file, refusing anything that expands past MAX_JSON_BYTES."""
    limit = f"{MAX_JSON_BYTES // 2**20} MiB"
    try:
        if path.name.lower().endswith(".xz"):
            with lzma.open(path, "rb") as f:
                raw = f.read(MAX_JSON_BYTES + 1)
        elif path.stat().st_size > MAX_JSON_BYTES:
            raise InputError(f"{path}: larger than {limit}; not a post or profile file (skipped).")
        else:
            raw = path.read_bytes()
        if len(raw) > MAX_JSON_BYTES:
            raise InputError(
                f"{path}: expands to more than {limit}; not a post or profile file (skipped)."
            )
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a post (skipped).") from None
    except (lzma.LZMAError, EOFError) as exc:
        raise InputError(f"{path}: damaged or truncated .xz file ({exc}).") from exc
    except ValueError as exc:  # not JSON, not UTF-8, an integer of over 4,300 digits
        raise InputError(f"{path}: not valid JSON ({exc}).") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc}).") from exc


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


def _instaloader_json(path: Path, data: dict) -> dict[str, Any]:
    """The values a post needs from an instaloader post's JSON. A JSON of another shape (a list
    where an object belongs, a missing item) is ImagionError: the file is skipped."""
    node = data.get("node") if isinstance(data, dict) else None
    try:
        kind = (data.get("instaloader") or {}).get("node_type") if isinstance(data, dict) else None
        if not isinstance(node, dict) or "shortcode" not in node or kind not in (None, "Post"):
            raise InputError(
                f"{path}: not an Instagram post (no node.shortcode; {kind or 'unknown'})."
            )
        like = (node.get("edge_media_preview_like") or {}).get("count")
        if like is None:
            like = (node.get("edge_liked_by") or {}).get("count")
        owner = node.get("owner") or {}
        edges = (node.get("edge_media_to_caption") or {}).get("edges") or []
        return {
            "like": like,
            "taken_at": node.get("taken_at_timestamp"),
            "username": owner.get("username"),
            "followers": (owner.get("edge_followed_by") or {}).get("count"),
            "owner_id": owner["id"] if owner.get("id") else None,
            "comments": (node.get("edge_media_to_comment") or {}).get("count"),
            "caption": edges[0].get("node", {}).get("text") if edges else None,
        }
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: unexpected structure, file skipped ({exc!r}).") from None


def parse_instaloader(path: Path, data: dict, problems: list[str]) -> Post:
    found = _instaloader_json(path, data)
    node = data["node"]
    try:
        likes = count_value(found["like"], "likes", hidden=-1)
        posted_at = time_value(found["taken_at"], "taken_at_timestamp")
    except ValueError as exc:
        raise _refuse(str(path), exc) from None
    account = found["username"] or path.parent.name
    stem = _stem(path)
    caption = found["caption"]
    txt = path.parent / f"{stem}.txt"  # instaloader's caption file, when the JSON has none
    if caption is None and txt.is_file():
        caption = txt.read_text(encoding="utf-8", errors="replace")
    caption = caption if isinstance(caption, str) else None
    is_video = bool(node.get("is_video")) or node.get("__typename") == "GraphVideo"
    where = str(path)
    alt_text = node.get("accessibility_caption")
    post = Post(
        account=str(account),
        post_id=str(node["shortcode"]),
        source=str(path.resolve()),
        source_format="instaloader",
        likes=likes if likes is not None and likes >= 0 else None,
        likes_hidden=likes is None or likes < 0,
        comments=optional_count(found["comments"], "comments", where, problems),
        posted_at=posted_at,
        followers=optional_count(found["followers"], "followers", where, problems),
        owner_id=str(found["owner_id"]) if found["owner_id"] else None,
        caption=caption,
        alt_text=alt_text if isinstance(alt_text, str) else None,
        tags=json.dumps(hashtags(caption)),
        is_video=is_video,
        is_carousel=node.get("__typename") == "GraphSidecar",
        extra={"where": where},
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


def parse_profilecrawl(path: Path, data: dict, problems: list[str]) -> list[Post]:
    account = str(data.get("alias") or path.stem)
    followers = optional_count(data.get("numberFollowers"), "numberFollowers", str(path), problems)
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
            posted_at = time_value(item.get("date"), "date")  # 1970-01-01: unknown
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
            tags=json.dumps(tag_list(item.get("tags"))),
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


MAX_CSV_LINE = 1 << 20  # characters: a manifest row is a few hundred; memory stays bounded


def _bounded_lines(f: Any, path: Path) -> Iterator[str]:
    """The file's lines, refusing one longer than MAX_CSV_LINE instead of reading it whole."""
    while True:
        line = f.readline(MAX_CSV_LINE + 1)
        if not line:
            return
        if len(line) > MAX_CSV_LINE:
            raise InputError(
                f"{path}: a line longer than {MAX_CSV_LINE:,} characters (not a CSV manifest?); "
                "the rest of the file is skipped."
            )
        yield line


def _delimiter(path: Path) -> str:
    """',' or, for a header written with semicolons (spreadsheets in many locales), ';'."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = f.readline(MAX_CSV_LINE)
    return ";" if "," not in first and ";" in first else ","


def csv_table(path: Path, problems: list[str]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, (line number, cells) of each row) of a CSV file; the rows are read as they are
    consumed, never held whole (a 300,000-row manifest); malformed rows are reported and
    skipped."""
    f = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 — closed by _csv_cells
    try:
        reader = csv.reader(_bounded_lines(f, path), delimiter=_delimiter(path))
        header = [h.strip() for h in next(reader, [])]
    except UnicodeDecodeError as exc:
        f.close()
        raise InputError(f"{path}: not a UTF-8 CSV file ({exc}).") from exc
    except BaseException:
        f.close()
        raise
    return header, _csv_cells(f, reader, path, len(header), problems)


def _csv_cells(
    f: Any, reader: Any, path: Path, width: int, problems: list[str]
) -> Iterator[tuple[int, list[str]]]:
    with f:
        errors = 0
        while errors <= MAX_CSV_ERRORS:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except ImagionError as exc:  # a line too long: the rows before it are kept
                problems.append(str(exc))
                return
            except UnicodeDecodeError as exc:  # the rows before it are kept
                problems.append(
                    f"{path}:{reader.line_num}: not UTF-8 ({exc}); the rest is skipped."
                )
                return
            except csv.Error as exc:
                errors += 1
                problems.append(f"{path}:{reader.line_num}: malformed CSV ({exc}); row skipped.")
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != width:
                errors += 1
                problems.append(
                    f"{path}:{reader.line_num}: {len(cells)} fields where the header has "
                    f"{width} (an unquoted comma?); row skipped."
                )
                continue
            yield reader.line_num, [c.strip() for c in cells]
        problems.append(
            f"{path}: more than {MAX_CSV_ERRORS} malformed rows; the rest of the file is skipped."
        )


def _csv_rows(
    path: Path, header: list[str], rows: Iterable[tuple[int, list[str]]]
) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV manifest as dicts; ImagionError when a required column is missing."""
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{path}: CSV lacks column(s) {', '.join(missing)} "
            f"(needs {', '.join(CSV_REQUIRED)}; optional followers, caption, post_id; "
            f"or an Instagram content export with Publish time and Permalink). "
            f"Columns found: {', '.join(header[:12]) or 'none'}."
        )
    return ((line, dict(zip(header, cells, strict=True))) for line, cells in rows)


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
        if isinstance(exc, OutOfRange):
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
        followers=optional_count(row.get("followers"), "followers", where, problems),
        caption=row.get("caption") or None,
        tags=json.dumps(hashtags(row.get("caption"))),
        extra={"where": where},
    )


def csv_posts(
    path: Path, header: list[str], rows: Iterable[tuple[int, list[str]]], problems: list[str]
) -> Iterator[Post]:
    """Posts of a CSV manifest (account, image, likes, posted_at…), one row at a time; each
    image file is checked and hashed once, however many rows name it."""
    seen: dict[Path, Checked] = {}
    for line, row in _csv_rows(path, header, rows):
        post = _csv_post(path, f"{path}:{line}", row, problems)
        if post is not None:
            _attach_image(post, (path.parent / row["image"]), problems, seen)
            yield post


def parse_csv(
    path: Path, header: list[str], rows: Iterable[tuple[int, list[str]]], problems: list[str]
) -> list[Post]:
    """Posts of a CSV manifest, as a list (csv_posts streams them)."""
    return list(csv_posts(path, header, rows, problems))
