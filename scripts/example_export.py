"""Write a generated example of a creator's own Instagram data, as Instagram hands it out:

* the "Download your information" export (JSON format) as a .zip: `media/posts/YYYYMM/*.jpg`,
  `your_instagram_activity/content/posts_1.json` (carousels, a reel, captions with emoji in
  Instagram's mojibake), `personal_information/personal_information/personal_information.json`
  and, as for a professional account, `logged_information/past_instagram_insights/posts.json`
  (for the newer posts only, some values "--");
* the professional dashboard's content export (CSV with a BOM, "12,400"-style numbers, local
  publish times in the account's time zone, English or German headers).

The photos are generated (flat colours with noise), nobody's real pictures. Used by the README's
"Your own account" walk-through and by the tests (which also write the older layouts).

    python scripts/example_export.py OUT_FOLDER [--posts 120] [--german]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image

ACCOUNT = "lena.travels"
TIMEZONE = "Europe/Berlin"
START = 1_672_560_000  # 2023-01-01 08:00 UTC
EN_HEADER = [
    "Post ID",
    "Account ID",
    "Account username",
    "Account name",
    "Description",
    "Duration (sec)",
    "Publish time",
    "Permalink",
    "Post type",
    "Data comment",
    "Date",
    "Views",
    "Reach",
    "Likes",
    "Shares",
    "Follows",
    "Comments",
    "Saves",
]
DE_HEADER = [
    "Beitrags-ID",
    "Konto-ID",
    "Konto-Benutzername",
    "Kontoname",
    "Beschreibung",
    "Dauer (Sek.)",
    "Veröffentlichungszeitpunkt",
    "Permalink",
    "Beitragstyp",
    "Datenkommentar",
    "Datum",
    "Aufrufe",
    "Reichweite",
    "„Gefällt mir“-Angaben",
    "Geteilte Inhalte",
    "Follows",
    "Kommentare",
    "Gespeicherte Beiträge",
]
PLACES = ["Lisbon", "Porto", "the Alps", "Kyoto", "Naples", "Bergen", "Marrakesh", "Oaxaca"]


@dataclass
class ExamplePost:
    """One generated post: what Instagram knows about it."""

    index: int
    ts: int  # UTC seconds
    caption: str
    slides: int  # 1, or more for a carousel
    video: bool
    likes: int
    reach: int
    views: int
    saves: int
    shares: int
    comments: int
    follows: int
    brightness: float

    @property
    def month(self) -> str:
        return datetime.fromtimestamp(self.ts, UTC).strftime("%Y%m")

    def uri(self, slide: int = 0) -> str:
        ext = "mp4" if self.video else "jpg"
        return f"media/posts/{self.month}/{17_900_000_000 + self.index * 10 + slide}_n.{ext}"

    @property
    def shortcode(self) -> str:
        return f"C{self.index:04d}lena"


def example_posts(n: int = 120, seed: int = 7) -> list[ExamplePost]:
    """`n` posts, one every six days, every 6th a carousel, every 9th a reel; likes vary with
    a hidden "quality" (the image brightness) and with reach."""
    rng = np.random.default_rng(seed)
    posts = []
    for i in range(n):
        quality = rng.uniform(0.2, 0.85)
        reach = int(rng.integers(1_500, 9_000))
        likes = max(1, int(reach * (0.02 + 0.08 * quality) * rng.uniform(0.8, 1.25)))
        place = PLACES[i % len(PLACES)]
        posts.append(
            ExamplePost(
                index=i,
                ts=START + i * 6 * 86_400 + int(rng.integers(0, 36_000)),
                caption=f"Morning in {place} ☀️🌊 #travel #{place.split()[-1].lower()}",
                slides=3 if i % 6 == 5 else 1,
                video=i % 9 == 8,
                likes=likes,
                reach=reach,
                views=int(reach * rng.uniform(1.2, 1.6)),
                saves=int(likes * rng.uniform(0.02, 0.1)),
                shares=int(likes * rng.uniform(0.01, 0.05)),
                comments=int(likes * rng.uniform(0.01, 0.06)),
                follows=int(rng.integers(0, 6)),
                brightness=quality,
            )
        )
    return posts


def mojibake(text: str) -> str:
    """Text as Instagram's export writes it: UTF-8 bytes as Latin-1 code points."""
    return text.encode("utf-8").decode("latin-1")


def jpeg(brightness: float, seed: int, size: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(rng.normal(brightness * 255, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def posts_json(posts: list[ExamplePost], title_inside: bool = False) -> list[dict]:
    """posts_1.json: single-media posts carry title and time in media[0] only when
    `title_inside` (older exports), carousels carry them at the top."""
    out = []
    for p in posts:
        media = [
            {
                "uri": p.uri(k),
                "creation_timestamp": p.ts,
                "media_metadata": {"photo_metadata": {"exif_data": [{"source_type": "camera"}]}},
                "title": mojibake(p.caption) if k == 0 and (title_inside or p.slides == 1) else "",
                "cross_post_source": {"source_app": "FB"},
            }
            for k in range(p.slides)
        ]
        entry: dict = {"media": media}
        if p.slides > 1 or not title_inside:
            entry |= {"title": mojibake(p.caption), "creation_timestamp": p.ts}
        out.append(entry)
    return out


def insights_json(posts: list[ExamplePost]) -> dict:
    """past_instagram_insights/posts.json for the newer two thirds of the posts."""
    entries = []
    for p in posts[len(posts) // 3 :]:
        values = {
            "Profile visits": "--",
            "Impressions": str(p.views),
            "Follows": str(p.follows),
            "Accounts reached": str(p.reach),
            "Saves": str(p.saves),
            "Likes": str(p.likes),
            "Comments": str(p.comments),
            "Shares": "--" if p.index % 4 == 0 else str(p.shares),
        }
        entries.append(
            {
                "media_map_data": {
                    "Media Thumbnail": {
                        "uri": p.uri(0),
                        "creation_timestamp": p.ts,
                        "title": mojibake(p.caption),
                    }
                },
                "string_map_data": {k: {"value": v, "timestamp": 0} for k, v in values.items()},
            }
        )
    return {"organic_insights_posts": entries}


def export_files(
    posts: list[ExamplePost],
    account: str = ACCOUNT,
    old_layout: bool = False,
    insights: bool = True,
    profile: bool = True,
) -> dict[str, bytes]:
    """Every file of the export, by its path inside the export."""
    content = "content" if old_layout else "your_instagram_activity/content"
    files: dict[str, bytes] = {}
    photos = [p for p in posts if not p.video]
    for p in posts:
        for k in range(p.slides):
            files[p.uri(k)] = b"\x00" * 64 if p.video else jpeg(p.brightness, p.index * 7 + k)
    files[f"{content}/posts_1.json"] = json.dumps(posts_json(photos, old_layout)).encode()
    reels = [p for p in posts if p.video]
    if reels:
        files[f"{content}/reels.json"] = json.dumps({"ig_reels_media": posts_json(reels)}).encode()
    if insights:
        files["logged_information/past_instagram_insights/posts.json"] = json.dumps(
            insights_json(posts)
        ).encode()
    if profile:
        user = {"string_map_data": {"Username": {"href": "", "value": account, "timestamp": 0}}}
        path = "personal_information/personal_information/personal_information.json"
        files[path] = json.dumps({"profile_user": [user]}).encode()
    return files


def write_export_zip(path: Path, files: dict[str, bytes], top: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return path


def write_export_folder(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _number(n: int) -> str:
    return f"{n:,}"


def content_csv(
    posts: list[ExamplePost], account: str = ACCOUNT, german: bool = False, tz: str = TIMEZONE
) -> str:
    """The content CSV of the professional dashboard (with its BOM)."""
    zone = ZoneInfo(tz)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DE_HEADER if german else EN_HEADER)
    for p in posts:
        local = datetime.fromtimestamp(p.ts, zone)
        when = local.strftime("%d.%m.%Y %H:%M" if german else "%m/%d/%Y %H:%M")
        kind = "reel" if p.video else ("carousel" if p.slides > 1 else "image")
        if german:
            kind = {"image": "Bild", "carousel": "Karussell", "reel": "Reel"}[kind]
        path = "reel" if p.video else "p"
        writer.writerow(
            [
                str(18_000_000_000_000_000 + p.index),
                "17841400000000000",
                account,
                "Lena",
                p.caption,
                "30" if p.video else "",
                when,
                f"https://www.instagram.com/{path}/{p.shortcode}/",
                f"IG {kind}",
                "",
                "Gesamte Laufzeit" if german else "Lifetime",
                _number(p.views).replace(",", ".") if german else _number(p.views),
                _number(p.reach).replace(",", ".") if german else _number(p.reach),
                str(p.likes),
                str(p.shares),
                str(p.follows),
                str(p.comments),
                str(p.saves),
            ]
        )
    return "\ufeff" + buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--posts", type=int, default=120)
    ap.add_argument("--german", action="store_true", help="German CSV headers and numbers")
    ap.add_argument(
        "--candidates",
        action="store_true",
        help="also OUT/candidates: the demo photos and a copy of one post (rank --history)",
    )
    args = ap.parse_args()
    posts = example_posts(args.posts)
    files = export_files(posts)
    zip_path = write_export_zip(args.out / f"instagram-{ACCOUNT}-2026-11-30.zip", files)
    csv_path = args.out / "content.csv"
    csv_path.write_text(content_csv(posts, german=args.german), encoding="utf-8")
    print(f"wrote {zip_path} and {csv_path}")
    if args.candidates:
        folder = write_candidates(args.out / "candidates", posts, files)
        print(f"wrote {len(list(folder.iterdir()))} photos to {folder}")


def write_candidates(folder: Path, posts: list[ExamplePost], files: dict[str, bytes]) -> Path:
    """Photos to rank against the account's past: the repository's demo photos, and one post's
    image saved again (a photo already posted)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for photo in sorted((Path(__file__).resolve().parents[1] / "data/samples").glob("*.jpg")):
        shutil.copyfile(photo, folder / photo.name)
    again = next(p for p in reversed(posts) if not p.video and p.slides == 1)
    (folder / "IMG_0412.jpg").write_bytes(files[again.uri()])
    return folder


if __name__ == "__main__":
    main()
