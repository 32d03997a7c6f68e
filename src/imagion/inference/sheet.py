"""`imagion rank --sheet FILE`: a contact sheet of the ranked photos, best first, each with its
rank, score and how sure the model is that it beats the next one down; `imagion pick --sheet`:
each picked photo with its group's runners-up small beside it. `.png`/`.jpg` are drawn by
matplotlib; `.html` embeds the thumbnails inline (one self-contained file)."""

from __future__ import annotations

import html
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagion.errors import ImagionError
from imagion.files import HTML_MARK, atomic_path, figure_marks, output_file, write_text_atomic
from imagion.images import decoded, jpeg_data_uri, open_image, square
from imagion.inference.history import past_shown
from imagion.names import shorten_apart, shown_name
from imagion.scores import score_text, shown_score

if TYPE_CHECKING:
    from imagion.inference.pick import Pick
    from imagion.inference.rank import Ranked

SUFFIXES = (".png", ".jpg", ".jpeg", ".html")
THUMB = 240


def check_sheet(path: Path) -> Path:
    """The sheet's path, checked before the work: a file already there is replaced only when it
    is a sheet imagion wrote (a photo named like the sheet is never overwritten)."""
    return output_file(path, "sheet", SUFFIXES)


def _caption(k: int, r: Ranked) -> str:
    sure = f" · {r.p_beats_next:.0%} > next" if r.p_beats_next is not None else ""
    return f"#{k + 1} · {shown_score(r.score, r.low, r.high)}{sure}"


PAST_PX = 56  # a past post's thumbnail on an HTML sheet (with a history)


def _thumbnail(path: Path | str):
    im = open_image(path)
    try:
        return square(decoded(im, THUMB, str(path)), THUMB)
    finally:
        im.close()


def _past_html(r: Ranked) -> str:
    """With a history: the post it already is, else its most similar past posts, in words and
    as small thumbnails with their scores (a post whose image cannot be read: words alone)."""
    posts, words = past_shown(r.already_posted, r.similar_posts)
    if not posts:
        return ""
    thumbs = []
    for post in posts:
        try:
            small = _thumbnail(post.image)
        except ImagionError:
            continue
        src = jpeg_data_uri(small.resize((PAST_PX, PAST_PX)))
        thumbs.append(
            f'<img class="past" src="{src}" alt="your post of {html.escape(post.date)}" '
            f'title="{html.escape(post.date)}: {score_text(post.score)}">'
        )
    return f"<br><i>{html.escape(words)}</i><br>{''.join(thumbs)}"


def _html(items: list[Ranked], title: str) -> str:
    cards = []
    for k, r in enumerate(items):
        src = jpeg_data_uri(_thumbnail(r.path), quality=82)
        name = html.escape(shown_name(r.path.name))
        cards.append(
            f'<figure><img src="{src}" alt="{name}"><figcaption><b>{html.escape(_caption(k, r))}</b>'
            f"<br>{name}{_past_html(r)}</figcaption></figure>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5rem}figure{display:inline-block;width:240px;"
        "margin:.5rem;vertical-align:top}img{width:240px;height:240px;object-fit:cover;border-radius:.4rem}"
        f"img.past{{width:{PAST_PX}px;height:{PAST_PX}px;margin:.2rem .2rem 0 0}}"
        "figcaption{font-size:.85rem;overflow-wrap:anywhere}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{HTML_MARK}<title>{html.escape(shown_name(title))}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(shown_name(title))}</h1>{''.join(cards)}</body></html>"
    )


MAX_SHEET = 100  # photos on one sheet (1,000 made a 224 MB PNG and took 1.1 GB)


def write_sheet(items: list[Ranked], path: Path, title: str) -> Path:
    """The contact sheet of the best MAX_SHEET of `items` (already best first) at `path`,
    written atomically."""
    path = check_sheet(path)
    items = items[:MAX_SHEET]
    if path.suffix.lower() == ".html":
        write_text_atomic(path, _html(items, title))
        return path
    _save(_sheet_figure(items, title), path, dpi=100)
    return path


NAME_CHARS = 32  # a file name on a drawn sheet: longer ones are shortened with "…"


def fitted_name(name: str, width: int = NAME_CHARS) -> str:
    """`name` in at most `width` characters: its start and its end (the extension, a camera's
    last digits) with "…" between, never cut without a mark."""
    if len(name) <= width:
        return name
    keep = max(width - 1, 2)
    tail = min(len(Path(name).suffix) + 6, keep // 2)
    return name[: keep - tail] + "…" + name[len(name) - tail :]


def _sheet_figure(items: list[Ranked], title: str) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no process-wide backend or figure state

    cols = min(5, max(1, len(items)))
    rows = max(1, math.ceil(len(items) / cols))
    fig = Figure(figsize=(3 * cols, 3.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    names = shorten_apart([shown_name(r.path.name) for r in items], 32)
    for k, (ax, r, name) in enumerate(zip(axes.flat, items, names, strict=False)):
        ax.imshow(_thumbnail(r.path))
        ax.set_title(f"{_caption(k, r)}\n{name}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def _save(fig: Any, path: Path, dpi: int) -> None:
    """A figure written atomically, marked as imagion's (so a later sheet may replace it)."""
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="jpeg" if jpeg else "png", **figure_marks(path))


SMALL = 4 * 2  # runners-up drawn beside each pick (two rows of four)


def _pick_html(picks: list[Pick], title: str) -> str:
    def img(path: Path, px: int) -> str:
        src = jpeg_data_uri(_thumbnail(path), quality=82)
        name = html.escape(shown_name(path.name))
        return f'<img src="{src}" alt="{name}" title="{name}" width="{px}" height="{px}">'

    rows = []
    for p in picks:
        small = "".join(img(r.path, 80) for r in p.group.runners_up[:SMALL])
        caption = f"#{p.place} · {shown_score(p.photo.score, p.photo.low, p.photo.high)} · {p.text}"
        rows.append(
            f"<section><figure>{img(p.photo.path, 240)}<figcaption><b>{html.escape(caption)}</b>"
            f"<br>{html.escape(shown_name(p.photo.path.name))}{_past_html(p.photo)}</figcaption>"
            "</figure>"
            f'<div class="small">{small}</div></section>'
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5rem}section{display:flex;gap:1rem;"
        "align-items:flex-start;margin-bottom:1rem}figure{margin:0;width:240px}img{object-fit:cover;"
        "border-radius:.4rem}.small{display:grid;grid-template-columns:repeat(4,80px);gap:.3rem}"
        "figcaption{font-size:.85rem;overflow-wrap:anywhere}"
        f"img.past{{width:{PAST_PX}px;height:{PAST_PX}px;margin:.2rem .2rem 0 0}}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{HTML_MARK}<title>{html.escape(shown_name(title))}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(shown_name(title))}</h1>{''.join(rows)}</body></html>"
    )


def write_pick_sheet(picks: list[Pick], path: Path, title: str) -> Path:
    """The picked photos, one row each, with up to SMALL of its group's runners-up small beside
    it, at `path` (written atomically)."""
    path = check_sheet(path)
    if path.suffix.lower() == ".html":
        write_text_atomic(path, _pick_html(picks, title))
        return path
    _save(_pick_figure(picks, title), path, dpi=90)
    return path


def _pick_figure(picks: list[Pick], title: str) -> Any:
    """One row per pick: the photo with its caption beside it (never over the photo above),
    its runners-up small beneath the caption."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2 * max(1, len(picks)) + 0.4), layout="constrained")
    outer = fig.add_gridspec(max(1, len(picks)), 2, width_ratios=[1, 2])
    names = shorten_apart([shown_name(p.photo.path.name) for p in picks], 28)
    for k, (p, name) in enumerate(zip(picks, names, strict=True)):
        ax = fig.add_subplot(outer[k, 0])
        ax.axis("off")
        ax.imshow(_thumbnail(p.photo.path))
        head = f"#{p.place} · {shown_score(p.photo.score, p.photo.low, p.photo.high)} · {name}"
        ax.set_title("\n".join([head, *textwrap.wrap(p.text, 44)]), fontsize=8)
        inner = outer[k, 1].subgridspec(2, SMALL // 2)
        for j in range(SMALL):
            small = fig.add_subplot(inner[j // (SMALL // 2), j % (SMALL // 2)])
            small.axis("off")
            if j < len(p.group.runners_up):
                small.imshow(_thumbnail(p.group.runners_up[j].path))
    fig.suptitle(title, fontsize=10)
    return fig
