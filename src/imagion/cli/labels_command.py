"""Content labels: labels."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.catalog.store import Catalog, resolve_catalog_path
from imagion.choices import Provider
from imagion.cli.app import CatalogOpt, JsonOpt, command
from imagion.cli.console import (
    emit_json,
    note,
    out,
    plural,
    progress_bar,
    sigterm_as_interrupt,
    visible,
    warn,
)
from imagion.errors import ImagionError
from imagion.files import output_file
from imagion.labels.cloud_vision import FREE_UNITS_PER_MONTH, PRICE_PER_1000
from imagion.labels.store import LabelSummary, pending
from imagion.labels.suggestions import LabelStats, clearly_positive
from imagion.problems import ProblemLog
from imagion.workflows.verbs import label


@command("labels")
def labels_cmd(
    catalog: CatalogOpt = None,
    provider: Annotated[
        list[Provider] | None,
        typer.Option(
            "--provider", "-p", help="Label source(s); repeat for several. Default: local."
        ),
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Relabel images already labelled.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before paid Cloud Vision calls.")
    ] = False,
    table: Annotated[
        bool, typer.Option("--table", help="Show the top labels per score and each label's lift.")
    ] = False,
    min_support: Annotated[int, typer.Option(help="Hide labels on fewer posts than this.")] = 5,
    top: Annotated[int, typer.Option(help="Labels per score bucket in the table.")] = 5,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Cloud Vision requests in flight at once (16 images each).")
    ] = 4,
    save_stats: Annotated[
        Path | None, typer.Option(help="Write the label statistics as JSON (for suggestions).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Label the catalog's posts (Cloud Vision, offline ImageNet, Instagram alt text, hashtags).

    Example: imagion labels --provider local --provider hashtags --table
    """
    path = resolve_catalog_path(catalog)
    providers = provider or [Provider.local]
    if save_stats is not None:  # before the work, not after it
        for prov in providers:
            output_file(_stats_path(save_stats, prov, providers), "save_stats", (".json",))
    summaries, stats_out = [], []
    saved: list[tuple[Path, LabelStats]] = []
    for prov in providers:
        if prov == Provider.google:
            with Catalog(path) as cat:
                _confirm_paid_work(cat, refresh, yes)
        dest = _stats_path(save_stats, prov, providers) if save_stats else None
        with sigterm_as_interrupt(), progress_bar(f"labels ({prov})") as update:
            report = label(
                path,
                prov,
                refresh=refresh,
                min_support=min_support,
                top=top,
                save_stats=dest,
                measure=table or bool(save_stats),
                concurrency=concurrency,
                progress=update,
            )
        _report(prov, report.summary)
        summaries.append(report.summary)
        if report.stats is not None:
            stats_out.append(report.stats)
            if dest is not None:
                saved.append((dest, report.stats))
    if json_:
        emit_json({"providers": summaries, "tables": [s.to_dict() for s in stats_out]})
        return
    for stats in stats_out:
        _render(stats)
    for dest, stats in saved:
        strong = len(clearly_positive(stats))
        note(
            f"wrote {dest}: {stats.provider} label statistics of {plural(stats.posts, 'scored post')}, "
            f"{plural(len(stats.lift), 'label')} with support ≥ {stats.min_support}, "
            f"{strong:,} clearly above zero (what rank --stats would suggest)."
        )
    done = (f"{s['provider']}: {s['labelled'] + s['cached']:,} items labelled" for s in summaries)
    note(", ".join(done))  # a status line: stdout holds the tables (or the JSON) only


def _confirm_paid_work(cat: Catalog, refresh: bool, yes: bool) -> None:
    """Say what Cloud Vision will cost; ask unless --yes (refuse without a terminal)."""
    todo, have = pending(cat, Provider.google, refresh)
    n = len(todo)
    note(
        f"Cloud Vision: {have:,} already labelled, {n:,} to go = {n:,} billable "
        f"LABEL_DETECTION units, ~${n * PRICE_PER_1000 / 1000:,.2f} at ${PRICE_PER_1000:.2f} "
        f"per 1,000 (the first {FREE_UNITS_PER_MONTH:,} each month are free); each batch is saved as it returns"
    )
    if n and not yes:
        if not sys.stdin.isatty():
            raise ImagionError("Cloud Vision calls are billed: pass --yes to confirm.")
        typer.confirm("Go ahead?", abort=True, err=True)


def _report(prov: Provider, summary: LabelSummary) -> None:
    for p in ProblemLog(summary["problems"]).lines():
        warn(p)
    note(
        f"{prov}: labelled {summary['labelled']:,} items ({summary['labels']:,} labels), "
        f"{summary['cached']:,} from the cache, {len(summary['problems'])} problems"
    )


def _render(stats: LabelStats) -> None:
    if not any(stats.per_bucket.values()) and not stats.lift:
        out.print(
            f"no labels to tabulate ({stats.provider}; {plural(stats.posts, 'scored post')}): "
            f"no label is seen on {stats.min_support} or more of them (--min-support); label "
            "more posts or lower --min-support.",
            highlight=False,
        )
        return
    t = Table(
        title=f"top labels per image score ({stats.provider}; {stats.posts:,} scored posts)",
        title_justify="left",
    )
    t.add_column("score", justify="right")
    t.add_column("most characteristic labels (posts in bucket)")
    for b in range(10, -1, -1):
        t.add_row(
            str(b),
            visible(
                ", ".join(f"{r['label']} ({r['posts']})" for r in stats.per_bucket.get(str(b), []))
            ),
        )
    out.print(t)
    lift = Table(
        title=f"label lift: mean score with − without (support ≥ {stats.min_support})",
        title_justify="left",
    )
    for c in ("label", "posts", "with", "without", "lift", "95% interval"):
        lift.add_column(c, justify="left" if c == "label" else "right")
    rows = stats.lift
    for r in rows[:10] + ([] if len(rows) <= 20 else [None]) + rows[max(10, len(rows) - 10) :]:
        if r is None:
            lift.add_row("…", "", "", "", "", "")
            continue
        lift.add_row(
            visible(r["label"]),
            str(r["support"]),
            f"{r['mean_with']:.2f}",
            f"{r['mean_without']:.2f}",
            f"{r['lift']:+.2f}",
            f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]",
        )
    if rows:
        out.print(lift)
    else:
        out.print(
            f"label lift: no label reaches --min-support {stats.min_support}.", highlight=False
        )


def _stats_path(save_stats: Path, provider: Provider, providers: list[Provider]) -> Path:
    """--save-stats FILE for one provider; with several, one file each (FILE.<provider>.json)."""
    return save_stats if len(providers) == 1 else save_stats.with_suffix(f".{provider}.json")
