"""Catalog commands: import, score, info, posts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.catalog.store import resolve_catalog_path
from imagion.choices import ScoreMapping, ScoreMetric
from imagion.cli.app import CatalogOpt, JsonOpt, command
from imagion.cli.console import (
    emit_json,
    note,
    out,
    plural,
    progress_bar,
    shorten,
    visible,
    warn,
)
from imagion.scores import score_text
from imagion.spreadsheet import safe_frame
from imagion.workflows.verbs import import_posts, posts, score
from imagion.workflows.verbs import info as catalog_info


@command("import")
def import_cmd(
    sources: Annotated[
        list[Path], typer.Argument(help="Folders, files or .zip exports to import.")
    ],
    catalog: CatalogOpt = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="The account's time zone (e.g. Europe/Berlin) for a content CSV's publish "
            "times; inferred from an export given in the same command when left out."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Import posts: Instagram's own exports, instaloader folders, profilecrawl JSON, CSV.

    Instagram's own: the "Download your information" export (its .zip or folder) and the
    professional dashboard's content CSV, joined by publish time.

    Example: imagion import instagram-me-2026-11-30.zip content.csv
    """
    path = resolve_catalog_path(catalog)
    with progress_bar("importing") as update:
        report = import_posts(sources, path, timezone=timezone, progress=update)
    removed = report.no_catalog
    info = {"posts": 0} if removed else catalog_info(path)
    for problem in report.problems.lines() + report.bad_arguments:
        warn(problem)
    for line in report.notes:
        note(line)
    held = (
        f"no catalog was created at {path}"  # one statement, not "holds 0 posts" and a warning
        if removed
        else f"catalog {path} now holds {info['posts']:,} posts"
    )
    if json_:
        emit_json(report.to_dict() | {"catalog": None if removed else info})
    elif report.posts == 0:
        out.print(
            f"imported nothing ({plural(report.problems.total, 'problem')}); {held}.",
            highlight=False,
        )
    else:
        fmt = ", ".join(f"{n:,} {k}" for k, n in sorted(report.by_format.items()))
        out.print(
            f"imported {plural(report.posts, 'post')} of {plural(report.accounts, 'account')} "
            f"({fmt}): "
            f"{report.inserted:,} new, {report.updated:,} updated, "
            f"{report.with_image:,} with an image, {report.problems.total:,} problems; "
            f"{held}.",
            highlight=False,
        )
        if report.joined is not None:
            j = report.joined
            out.print(
                f"content CSV joined to the export's images: {j.matched:,} rows matched; "
                f"without a match: {plural(j.csv_without_image, 'photo row')} (kept without "
                f"an image), {plural(j.images_without_metrics, 'image')} without metrics; "
                f"CSV times read as {j.timezone}.",
                highlight=False,
            )
    if report.posts == 0 or report.bad_arguments:
        raise typer.Exit(1)


@command("score")
def score_cmd(
    catalog: CatalogOpt = None,
    window: Annotated[
        int | None,
        typer.Option(
            help="Standardize against the N posts before each post (the original design's 'past x posts')."
        ),
    ] = None,
    min_posts: Annotated[
        int, typer.Option(help="Accounts with fewer usable posts get no score.")
    ] = 3,
    log: Annotated[
        bool, typer.Option("--log", help="Use log(1+likes) before standardizing.")
    ] = False,
    mapping: Annotated[
        ScoreMapping, typer.Option(help="z → 0–10 mapping (minmax is the original design's).")
    ] = ScoreMapping.percentile,
    metric: Annotated[
        ScoreMetric,
        typer.Option(
            help="What to standardize: likes, or engagement (likes per account reached) and "
            "the other statistics of Instagram's own exports."
        ),
    ] = ScoreMetric.likes,
    json_: JsonOpt = False,
) -> None:
    """Compute each post's 0–10 image score from its likes, standardized within its account.

    Example: imagion score --window 10 --log
    """
    report = score(
        resolve_catalog_path(catalog),
        window=window,
        min_posts=min_posts,
        log=log,
        mapping=mapping,
        metric=metric,
    )
    if json_:
        emit_json(report.to_dict())
        return
    table = Table(title="posts per score bucket", title_justify="left")
    table.add_column("score", justify="right")
    table.add_column("posts", justify="right")
    table.add_column("histogram")
    peak = max(report.histogram) or 1
    for i, n in enumerate(report.histogram):
        table.add_row(str(i), f"{n:,}", "█" * round(30 * n / peak))
    out.print(table)
    for reason, n in report.unscored.items():
        note(f"no score: {n:,} posts ({report.unscored_accounts[reason]:,} accounts): {reason}")
    out.print(
        f"scored {plural(report.scored, 'post')} of {plural(report.accounts_scored, 'account')} "
        f"(metric {metric}, mapping {report.settings['mapping']}, "
        f"window {window or 'all posts'}); "
        f"{sum(report.unscored.values()):,} posts unscored.",
        highlight=False,
    )


@command("info")
def info_cmd(catalog: CatalogOpt = None, json_: JsonOpt = False) -> None:
    """Summarize the catalog: accounts, posts, images, scores, carousels, videos, dates.

    Example: imagion info --json
    """
    info = catalog_info(resolve_catalog_path(catalog))
    if json_:
        emit_json(info)
        return
    table = Table(show_header=False)
    for key, value in info.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    out.print(table)
    out.print(
        f"{plural(info['posts'], 'post')} of {plural(info['accounts'], 'account')}, "
        f"{info['posts_with_image']:,} with an image, {info['scored']:,} scored."
    )


@command("posts")
def posts_cmd(
    catalog: CatalogOpt = None,
    account: Annotated[list[str] | None, typer.Option(help="Only these accounts.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="At most N rows (the table shows 50 unless told).")
    ] = None,
    json_: JsonOpt = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
) -> None:
    """List the catalog's posts (for pandas or a spreadsheet: --csv or --json).

    Example: imagion posts --account natgeo --csv > natgeo.csv
    """
    import sys

    import pandas as pd

    if limit is None and not (json_ or csv_):
        limit = 50
    got = posts(
        resolve_catalog_path(catalog), accounts=account, limit=limit, everything=json_ or csv_
    )
    df, total = got.frame, got.total
    if json_:
        emit_json(got.records())
    elif csv_:
        safe_frame(df).to_csv(sys.stdout, index=False)
    else:
        table = Table()
        # one line per post at 80 columns: numbers and times whole; names and ids shortened in
        # the middle (their ends tell posts apart: 17-digit export ids share their start)
        wide = out.width >= 100
        widths = {"account": 18 if wide else 10, "post_id": 12 if wide else 9, "likes": 8}
        widths |= {"posted_at (UTC)": 16, "score": 5}
        widths["image"] = max(8, out.width - 19 - sum(widths.values()))  # 19: borders, padding
        for c, w in widths.items():
            table.add_column(
                c,
                overflow="ellipsis",
                no_wrap=True,
                justify="right" if c in ("likes", "score") else "left",
                min_width=w if c in ("likes", "posted_at (UTC)", "score") else None,
                max_width=w if c in ("account", "post_id", "image") else None,
            )
        for r in df.itertuples():
            table.add_row(
                shorten(visible(r.account), widths["account"]),
                shorten(visible(r.post_id), widths["post_id"]),
                "" if pd.isna(r.likes) else f"{int(r.likes):,}",
                # minutes in UTC (one line at 80 columns); undated: empty, not NaN
                r.posted_at[:16].replace("T", " ") if isinstance(r.posted_at, str) else "",
                "" if pd.isna(r.score) else score_text(r.score),
                visible(Path(r.image).name) if isinstance(r.image, str) else "",
            )
        out.print(table)
    note(f"{len(df):,} of {total:,} posts" + (" (--limit N for more)" if len(df) < total else ""))
