"""Posts of a "Download your information" export (JSON format): images, captions, times, and for
professional accounts the per-post insights (likes, reach, saves…).

Shapes read (they vary between export versions; each variant here was seen in real exports):
* posts: `content/posts_N.json`, a list of `{"media": [{"uri", "creation_timestamp", "title",
  "media_metadata"…}], "title", "creation_timestamp"}`; `title`/`creation_timestamp` are sometimes
  only inside `media[0]`; a carousel has several media;
* reels: `content/reels.json`, `{"ig_reels_media": [{"media": [...]}]}` (kept without an image);
* insights: `logged_information/past_instagram_insights/posts.json`, `{"organic_insights_posts":
  [{"media_map_data": {"Media Thumbnail": {"uri", "creation_timestamp", "title"}},
  "string_map_data": {"Likes": {"value": "1200"}, "Accounts reached": …}}]}`, values may be "--";
* the account: `personal_information/personal_information.json` (`profile_user[0]
  .string_map_data.Username.value`), else an export named `instagram-<username>-<date>`.
Text is UTF-8 bytes written as Latin-1 code points (emoji arrive as `\\u00f0\\u009f…`): repaired.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from imagion.catalog.export_tree import MAX_EXPORT_POSTS, ExportTree, OverBudget
from imagion.catalog.store import METRIC_COLUMNS, Post
from imagion.catalog.values import count_value, hashtags, time_value
from imagion.errors import ImagionError
from imagion.images import MAX_MEMBER_BYTES, MAX_PIXELS, open_image

POSTS = re.compile(r"(your_instagram_activity/)?content/posts_\d+\.json")
REELS = re.compile(r"(your_instagram_activity/)?(content|media)/reels\.json")
INSIGHTS = re.compile(r"logged_information/past_instagram_insights/posts\.json")
PROFILE = re.compile(r"personal_information/(personal_information/)?personal_information\.json")
EXPORT_NAME = re.compile(r"instagram-([A-Za-z0-9._]+)-\d{4}-\d{2}-\d{2}")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm")
# every metric an export or content CSV may hold: the catalog column for each spelling
# (lower case, letters only, so "Accounts reached", "accounts_reached" and "AccountsReached" agree)
METRIC_NAMES = {
    "likes": "likes",
    "comments": "comments",
    "saves": "saves",
    "saved": "saves",
    "shares": "shares",
    "accountsreached": "reach",
    "reach": "reach",
    "impressions": "impressions",
    "views": "impressions",
    "plays": "impressions",
    "follows": "follows",
    "profilevisits": "profile_visits",
}
METRICS = ("likes", "comments", *METRIC_COLUMNS)


def fix_text(value: object) -> str | None:
    """Repair the export's mojibake (UTF-8 bytes stored as Latin-1 code points); text that is
    not mojibake comes back unchanged."""
    if not isinstance(value, str):
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


# a count written with thousands separators; "1.5" or "2,75" is not one (it is refused)
THOUSANDS = re.compile(r"\d{1,3}(?:[,.'\u00a0\u202f ]\d{3})+")


def metric_key(name: str) -> str | None:
    return METRIC_NAMES.get(re.sub(r"[^a-z]", "", name.lower()))


def set_metric(post: Post, column: str, value: object, where: str, problems: list[str]) -> None:
    """Store one metric ("1,200", 1200, "--" = not available) on the post."""
    text = str(value).strip() if value is not None else ""
    if text in ("", "--", "-", "–", "n/a", "N/A"):
        return
    if THOUSANDS.fullmatch(text):  # "12,400", "12.400", "12 400": counts are whole
        text = re.sub(r"[\s,.'\u00a0\u202f]", "", text)
    try:
        number = count_value(text, column)
    except ValueError as exc:
        problems.append(f"{where}: {exc}; stored as unknown.")
        return
    if column == "likes":
        post.likes, post.likes_hidden = number, False
    else:
        setattr(post, column, number)


def has_metrics(post: Post) -> bool:
    return any(getattr(post, m) is not None for m in METRICS)


@dataclass
class ExportResult:
    """What one export held: its posts (keyed by media uri), and what could not be read."""

    tree: ExportTree
    account: str | None
    posts: list[Post] = field(default_factory=list)


def _json_files(
    tree: ExportTree, pattern: re.Pattern[str], problems: list[str]
) -> Iterator[tuple[str, object]]:
    """(path inside the export, parsed JSON) of each file matching `pattern`; a file that
    cannot be read costs one line in `problems`, never the others."""
    for rel in tree.matching(pattern):
        try:
            yield rel, tree.read_json(rel)
        except OverBudget:
            continue  # said once for the export, at its end
        except ImagionError as exc:
            problems.append(str(exc))


def _account(tree: ExportTree, problems: list[str]) -> str | None:
    for _rel, data in _json_files(tree, PROFILE, problems):
        users = data.get("profile_user") if isinstance(data, dict) else None
        for user in users if isinstance(users, list) else []:
            fields = (user or {}).get("string_map_data") or {}
            for key, item in fields.items() if isinstance(fields, dict) else []:
                if re.sub(r"[^a-z]", "", key.lower()) == "username" and isinstance(item, dict):
                    name = fix_text(item.get("value"))
                    if name:
                        return name.strip().lstrip("@")
    m = EXPORT_NAME.fullmatch(tree.name)
    return m.group(1) if m else None


def _entries(data: object, key: str) -> list[object] | None:
    """The list of posts in a posts/reels file: the file itself, or its one list of posts."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if isinstance(data.get(key), list):
            return data[key]
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return None


def _describe(data: object) -> str:
    if isinstance(data, dict):
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        return f"an object with keys {keys}"
    return f"a JSON {type(data).__name__}"


def _attach(post: Post, tree: ExportTree, rel: str, problems: list[str]) -> None:
    """The image of a post, checked and hashed in place (inside the zip when it is one)."""
    ref = tree.image_ref(rel)
    if not tree.has(rel):
        problems.append(f"{tree.where(rel)}: image file is missing; the post is kept without it.")
        return
    try:
        data = tree.read_bytes(rel, MAX_MEMBER_BYTES)
        im = open_image(data, tree.where(rel), MAX_PIXELS)
        post.width, post.height = im.size
        im.close()
    except ImagionError as exc:
        problems.append(f"{exc} The post is kept without an image.")
        return
    post.image, post.image_sha256 = ref, hashlib.sha256(data).hexdigest()


def _post(
    tree: ExportTree, item: object, where: str, account: str, problems: list[str]
) -> Post | None:
    if not isinstance(item, dict) or not isinstance(item.get("media"), list) or not item["media"]:
        keys = ", ".join(sorted(item)[:8]) if isinstance(item, dict) else type(item).__name__
        problems.append(f"{where}: expected a post with a media list; found {keys}; skipped.")
        return None
    media = [m for m in item["media"] if isinstance(m, dict) and isinstance(m.get("uri"), str)]
    if not media:
        problems.append(f"{where}: no media entry has a uri; skipped.")
        return None
    first = media[0]
    uris = [m["uri"].lstrip("/") for m in media]
    images = [u for u in uris if not u.lower().endswith(VIDEO_SUFFIXES)]
    title = fix_text(item.get("title")) or fix_text(first.get("title")) or None
    try:
        posted_at = time_value(
            item.get("creation_timestamp") or first.get("creation_timestamp"),
            "creation_timestamp",
        )
    except ValueError as exc:
        problems.append(f"{where}: {exc}; kept without a date.")
        posted_at = None
    post = Post(
        account=account,
        post_id=PurePosixPath(uris[0]).stem,
        source=tree.image_ref(""),
        source_format="instagram-export",
        likes_hidden=True,  # until insights or a content CSV say otherwise
        posted_at=posted_at,
        caption=title,
        tags=json.dumps(hashtags(title)),
        is_video=not images,
        is_carousel=len(media) > 1,
        extra={"where": where, "uris": uris},
    )
    if images:
        _attach(post, tree, images[0], problems)
    return post


def _insights(tree: ExportTree, result: ExportResult, problems: list[str]) -> None:
    """Put each insights entry's metrics on its post (by thumbnail uri, else by time); an entry
    whose post is not in the export becomes a post of its own, with its thumbnail as image."""
    if not tree.matching(INSIGHTS):
        return  # no index of every post's media and time to build (a personal account)
    by_uri = {u: p for p in result.posts for u in p.extra["uris"]}
    by_time = {p.posted_at: p for p in result.posts if p.posted_at}
    for rel, data in _json_files(tree, INSIGHTS, problems):
        entries = data.get("organic_insights_posts") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            problems.append(
                f"{tree.where(rel)}: expected organic_insights_posts; found {_describe(data)}; "
                "skipped."
            )
            continue
        for i, entry in enumerate(entries):
            where = f"{tree.where(rel)}: insights #{i}"
            if not isinstance(entry, dict):
                problems.append(f"{where}: not an object; skipped.")
                continue
            thumb = ((entry.get("media_map_data") or {}).get("Media Thumbnail")) or {}
            values = entry.get("string_map_data") or {}
            if not isinstance(values, dict) or not isinstance(thumb, dict):
                problems.append(f"{where}: expected string_map_data; found {_describe(entry)}.")
                continue
            stamp = thumb.get("creation_timestamp")
            for key, item in values.items():
                if re.sub(r"[^a-z]", "", key.lower()) == "creationtimestamp":
                    stamp = stamp or (item or {}).get("timestamp")
            uri = str(thumb.get("uri") or "").lstrip("/")
            try:
                ts = time_value(stamp, "creation_timestamp")
            except ValueError:
                ts = None
            post = by_uri.get(uri) or by_time.get(ts)  # type: ignore[arg-type]
            if post is None:
                post = _post(
                    tree,
                    {"media": [thumb | {"uri": uri or f"insights-{i}"}]},
                    where,
                    result.account or "",
                    problems,
                )
                if post is None:
                    continue
                result.posts.append(post)
            for key, item in values.items():
                column = metric_key(key)
                if column and isinstance(item, dict):
                    set_metric(post, column, item.get("value"), where, problems)


def read_export(tree: ExportTree, problems: list[str]) -> ExportResult:
    """Every post of an export, with its image and whatever metrics the export holds."""
    if tree.duplicates:
        shown = ", ".join(tree.duplicates[:3]) + (" …" if len(tree.duplicates) > 3 else "")
        problems.append(
            f"{tree.label}: {len(tree.duplicates):,} names appear more than once in the zip "
            f"({shown}); the last copy of each is read. Re-download the export if in doubt."
        )
    try:
        result = ExportResult(tree, _account(tree, problems))
        account = result.account or ""
        for pattern, key in ((POSTS, "posts"), (REELS, "ig_reels_media")):
            for rel, data in _json_files(tree, pattern, problems):
                entries = _entries(data, key)
                if entries is None:
                    problems.append(
                        f"{tree.where(rel)}: expected a list of posts with media; found "
                        f"{_describe(data)}; skipped."
                    )
                    continue
                for i, item in enumerate(entries):
                    if len(result.posts) >= MAX_EXPORT_POSTS:
                        problems.append(
                            f"{tree.where(rel)}: post #{i} and the rest skipped: this export "
                            f"already gave {MAX_EXPORT_POSTS:,} posts, more than any account's "
                            "export holds."
                        )
                        break
                    post = _post(tree, item, f"{tree.where(rel)}: post #{i}", account, problems)
                    if post is not None:
                        result.posts.append(post)
                # the parsed file is let go before the next one is parsed: a loop variable
                # would keep it alive alongside (three 40 MiB lists peaked at 1.6 GB)
                del data, entries
        _insights(tree, result, problems)
    finally:
        tree.close()  # the zip, opened once for every file read
    return result


def name_accounts(results: Iterable[ExportResult], fallback: str | None) -> None:
    """Posts of an export whose account is unknown take `fallback` (the content CSV's username)
    or else the export's own name."""
    for result in results:
        if result.account:
            continue
        result.account = fallback or result.tree.name
        for post in result.posts:
            post.account = result.account
