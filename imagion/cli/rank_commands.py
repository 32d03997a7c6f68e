"""Scoring files: rank, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.choices import Device, EngineKind
from imagion.cli.app import DeviceOpt, JsonOpt, ModelOpt, SimilarityOpt, StatsOpt, command
from imagion.cli.app import about_model as _about_model
from imagion.cli.console import (
    emit_json,
    note,
    out,
    progress_bar,
    say,
    shorten,
    skipped_all,
    visible,
)
from imagion.cli.history_options import (
    CSV_FIELDS,
    AccountOpt,
    HistoryOpt,
    SimilarOpt,
    csv_cells,
    history_cell,
    history_given,
)
from imagion.errors import ImagionError, OptionError
from imagion.files import writable_folder
from imagion.inference.groups import SIMILARITY
from imagion.inference.history import K_SIMILAR, history_hook, history_scorer
from imagion.inference.rank import (
    RankResult,
    RankRow,
    check_output_folders,
    compare_images,
    copy_top,
)
from imagion.inference.sheet import MAX_SHEET, check_sheet, write_sheet
from imagion.scale.ray_data import require_ray
from imagion.scale.tables import check_table
from imagion.scores import (
    NEXT_MEANING,
    odds_words,
    score_meaning,
    score_text,
    shown_score,
)
from imagion.spreadsheet import write_rows
from imagion.workflows.verbs import rank, rank_on_ray


def _tip(row: RankRow) -> str:
    """The table's last column: the labels seen (— when none is sure enough), and a crop
    likely to do better."""
    tip = ", ".join(row.get("labels", [])[:3]) or "—"
    crop = row.get("crop")
    if crop:
        tip += f"; crop to {crop['format']} ({crop['position']}): {score_text(crop['score'])}, P(better) {crop['p_better']:.0%}"
    return tip


@command("rank")
def rank_cmd(  # over 60 lines: one Annotated option each; the body is ~30
    paths: Annotated[
        list[str],
        typer.Argument(help="Image files, folders or globs (JPEG, PNG, WebP, GIF, TIFF, BMP…)."),
    ],
    model: ModelOpt = None,
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Search folders recursively.")
    ] = False,
    top: Annotated[int | None, typer.Option(help="Show (and copy) only the best K.")] = None,
    copy_to: Annotated[
        Path | None, typer.Option(help="Copy the top images here, named rank_score_name.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Images per forward pass (default: by model).")
    ] = None,
    device: DeviceOpt = Device.auto,
    suggest: Annotated[
        bool, typer.Option(help="Add content suggestions (EfficientNet-Lite0 models).")
    ] = True,
    stats: StatsOpt = None,
    crops: Annotated[
        Path | None,
        typer.Option(
            help="Try Instagram's formats (1:1, 4:5, 1.91:1) on each photo; write the crops likely (≥ 60%) to do better here."
        ),
    ] = None,
    sheet: Annotated[
        Path | None,
        typer.Option(
            help="Also draw a contact sheet, best first (.png, .jpg, or .html with inline thumbnails)."
        ),
    ] = None,
    json_: JsonOpt = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
    groups: Annotated[
        bool,
        typer.Option(
            "--groups",
            help="Group near-duplicates (bursts, reframings, re-saves): each group's best first, the others folded under it; --top K shows K groups.",
        ),
    ] = False,
    similarity: SimilarityOpt = SIMILARITY,
    engine: Annotated[
        EngineKind,
        typer.Option(
            help="local: in this process; ray: Ray Data on this machine or --address (pip extra: ray), writing --out.",
            rich_help_panel="Past one machine",
        ),
    ] = EngineKind.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the cluster to join (e.g. ray://head:10001); default: a Ray started here.",
            rich_help_panel="Past one machine",
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="With --engine ray: the Parquet table to write (path, score, raw, error); a new name, nothing there is replaced.",
            rich_help_panel="Past one machine",
        ),
    ] = None,
    features: Annotated[
        bool,
        typer.Option(
            "--features",
            help="With --engine ray: add the pooled features to the table.",
            rich_help_panel="Past one machine",
        ),
    ] = False,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels",
            help="With --engine ray: add the offline labels seen to the table.",
            rich_help_panel="Past one machine",
        ),
    ] = False,
    history: HistoryOpt = None,
    account: AccountOpt = None,
    similar: SimilarOpt = K_SIMILAR,
) -> None:
    """Score images 0–10 (5 = a typical post of the account) with an 80% range, best first.

    Example: imagion rank ~/Pictures/candidates/*.jpg --top 3 --copy-to ~/to-post
    One per moment: imagion rank ~/Pictures/trip --groups (or imagion pick ~/Pictures/trip -n 5)
    Millions of photos: imagion rank /data/photos -r --engine ray --out scores.parquet --top 100
    """
    if top is not None and top < 1:
        raise OptionError("top", top, "show at least 1 image (or leave `top` out for all).")
    if engine == EngineKind.ray:
        local_only: dict[str, object] = {
            "--copy-to": copy_to,
            "--crops": crops,
            "--sheet": sheet,
            "--csv": csv_ or None,
            "--groups": groups or None,
            "--history": history,
        }
        _rank_on_ray(
            paths,
            model,
            recursive,
            top,
            table,
            address,
            device,
            batch_size,
            features,
            labels,
            json_,
            local_only,
        )
        return
    if table is not None or address is not None or features or labels:
        raise ImagionError("--out, --address, --features and --labels go with --engine ray.")
    if similarity != SIMILARITY and not groups:  # said, not silently ignored
        raise ImagionError("--similarity goes with --groups (or imagion pick).")
    if json_ and csv_:
        raise ImagionError("--json and --csv: choose one.")
    history_given(history, account, similar)
    if groups:
        # registers `pick`: imported here so that `rank` comes first in `imagion --help`
        from imagion.cli.pick_command import rank_groups

        rank_groups(
            paths, model=model, recursive=recursive, top=top, similarity=similarity,
            batch_size=batch_size, device=device, suggest=suggest, stats=stats, json_=json_,
            csv_=csv_, not_with_groups={"--copy-to": copy_to, "--crops": crops, "--sheet": sheet},
            with_shots=None if history is None else history_hook(history, account, similar),
        )  # fmt: skip
        return
    check_output_folders(paths, recursive, {"--copy-to": copy_to, "--crops": crops})
    for folder, option in ((copy_to, "--copy-to"), (crops, "--crops")):
        if folder is not None:  # before the work, not after it
            writable_folder(folder, option)
    if sheet is not None:
        check_sheet(sheet)
    with progress_bar("scoring") as update:
        result = rank(
            paths,
            model=model,
            recursive=recursive,
            batch_size=batch_size,
            device=device,
            progress=update,
            suggest=suggest,
            stats=stats,
            crops=crops,
            top=top,
            history=history,
            account=account,
            similar=similar,
        )
    skipped_all(result.problems)
    rows = result.to_list()
    _files_out(result, top, copy_to, sheet)
    if crops is not None:
        if result.crops_written:
            note(
                f"wrote {len(result.crops_written)} crop(s) likely (≥ 60%) to do better to {crops}"
            )
        else:
            note(
                f"no crop is likely (≥ 60%) to do better than its photo; nothing written to {crops}"
            )
    if json_:
        emit_json(rows)
    elif csv_:
        _write_csv(rows)
    else:
        out.print(_rank_table(rows, f"model {Path(result.model).name} ({result.arch})"))
        for line in _rank_notes(rows, result.no_interval):
            say(line)
    note(f"ranked {result.scored} images, skipped {len(result.problems)}")
    _about_model(result.model, result.uncalibrated)


def _rank_on_ray(
    paths: list[str],
    model: Path | None,
    recursive: bool,
    top: int | None,
    table: Path | None,
    address: str | None,
    device: Device,
    batch_size: int | None,
    features: bool,
    labels: bool,
    json_: bool,
    local_only: dict[str, object],
) -> None:
    """`rank --engine ray`: the table on disk, a summary, the best K."""
    given = [flag for flag, value in local_only.items() if value]
    if given:
        raise ImagionError(
            f"{', '.join(given)}: not available with --engine ray (use --out and --top)."
        )
    require_ray()  # a missing extra is said before anything else
    if table is not None:
        check_table(table)  # and anything in the way of --out, before the first note
    note("scoring on Ray Data…")
    with progress_bar("scoring") as update:
        result = rank_on_ray(
            paths, model=model, recursive=recursive, top=top, out=table, address=address,
            device=device, batch_size=batch_size or 64, features=features, labels=labels,
            progress=update,
        )  # fmt: skip
    skipped_all(result.problems)
    if json_:
        emit_json(result.to_dict())
        return
    if result.top:
        t = Table(title=f"best {len(result.top)} (Ray Data)", title_justify="left")
        for c in ("#", "file", "score"):
            t.add_column(c, justify="left" if c == "file" else "right")
        for k, r in enumerate(result.top, 1):
            t.add_row(str(k), visible(Path(r["path"]).name), score_text(r["score"]))
        out.print(t)
    where = f"; table {result.table}" if result.table else ""
    note(
        f"scored {result.scored:,} images, {result.failed:,} unreadable (rows with their reason)"
        f"{where}; {result.seconds:.1f} s"
    )


def _files_out(
    result: RankResult, top: int | None, copy_to: Path | None, sheet: Path | None
) -> None:
    if copy_to is not None:
        copied = copy_top(result, copy_to, top)
        note(f"copied {len(copied)} images to {copy_to}")
    if sheet is not None:
        title = f"imagion rank · model {Path(result.model).name} ({result.arch})"
        shown = result.items[: top or None]
        note(f"wrote {write_sheet(shown, sheet, title)}")
        if len(shown) > MAX_SHEET:
            note(f"the sheet shows the best {MAX_SHEET} of {len(shown):,} (--top K to choose)")


def _write_csv(rows: list[RankRow]) -> None:
    import sys

    fields = ["rank", "path", "score", "score_low", "score_high", "raw", "suggestion"]
    if any("similar_posts" in r for r in rows):
        fields += CSV_FIELDS
        rows = [{**r, **csv_cells(r)} for r in rows]  # type: ignore[typeddict-item]
    write_rows(sys.stdout, fields, rows)


def _rank_notes(rows: list[RankRow], no_interval: str | None) -> list[str]:
    """What the numbers mean (one sentence each) and the advice: once when every photo gets the
    same, else for the photos it concerns; cautions on the photos they concern."""
    lines = score_meaning(no_interval)
    if any("p_beats_next" in r for r in rows):
        lines.append(NEXT_MEANING)
    advised = [r for r in rows if "suggestion" in r]
    groups: dict[str, list[int]] = {}
    for r in advised:
        groups.setdefault(r["suggestion"], []).append(r["rank"])
    for text, ranks in groups.items():
        if not text:
            continue
        if len(groups) == 1 and len(ranks) == len(rows) > 1:
            lines.append(f"Advice for every photo here: {_lower_first(text)}")
        else:
            lines.append(f"{_ranks(ranks)}: {text}")
    return lines


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _ranks(ranks: list[int]) -> str:
    return ("#" if len(ranks) == 1 else "photos #") + ", #".join(map(str, ranks))


def _display_names(rows: list[RankRow]) -> list[str]:
    """File names as short as they can be while still telling the files apart."""
    import os

    paths = [Path(r["path"]) for r in rows]
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    try:
        base = Path(os.path.commonpath([str(p.parent) for p in paths]))
        return [str(p.relative_to(base)) for p in paths]
    except ValueError:
        return [str(p) for p in paths]


def _rank_table(rows: list[RankRow], model: str) -> Table:
    """The ranking at the terminal's width: numbers always whole, file names shortened in the
    middle, the labels seen wrapped."""
    scores = [shown_score(r["score"], r.get("score_low"), r.get("score_high")) for r in rows]
    sure = any("p_beats_next" in r for r in rows)
    with_tips = any("suggestion" in r or "crop" in r for r in rows)
    heads = ["#", "file", "score (80% range)" if any("score_low" in r for r in rows) else "score"]
    past = any("similar_posts" in r for r in rows)
    heads += ["P(> next)"] * sure + ["seen"] * with_tips + ["your past posts"] * past
    fixed = [max(len(str(len(rows))), 1), max(map(len, [heads[2], *scores]))]
    fixed += [len("P(> next)")] * sure
    names = _display_names(rows)
    room = max(out.width, 40) - 3 * len(heads) - 1 - sum(fixed) - (12 if with_tips else 0)
    room -= 16 if past else 0
    width = max(12, min(max(map(len, names)), room))
    table = Table(title=f"image score (0–10) · {model}", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True, min_width=fixed[0])
    table.add_column("file", no_wrap=True, width=width)
    table.add_column(heads[2], justify="right", no_wrap=True, min_width=fixed[1])
    if sure:
        table.add_column("P(> next)", justify="right", no_wrap=True, min_width=fixed[2])
    if with_tips:
        table.add_column("seen", overflow="fold", min_width=4)
    if past:
        table.add_column("your past posts", overflow="fold", min_width=12)
    for r, name, shown in zip(rows, names, scores, strict=True):
        cells = [str(r["rank"]), shorten(visible(name), width), shown]
        cells += [f"{r['p_beats_next']:.0%}" if "p_beats_next" in r else ""] if sure else []
        cells += [_tip(r)] if with_tips else []
        cells += [history_cell(r) or "—"] if past else []
        table.add_row(*map(visible, cells))
    return table


@command("compare")
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="First image.")],
    b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
    stats: StatsOpt = None,
    json_: JsonOpt = False,
    history: HistoryOpt = None,
    account: AccountOpt = None,
    similar: SimilarOpt = K_SIMILAR,
) -> None:
    """Which of two images will get more attention? Prints the winner, both scores and P(A beats B).

    Example: imagion compare beach.jpg city.jpg
    """
    history_given(history, account, similar)
    scorer = None if history is None else history_scorer(history, account, similar)
    c = compare_images(a, b, model=model, device=str(device), stats=stats, scorer=scorer)
    if json_:
        emit_json(c.to_dict())
        return
    verdict = c.verdict()
    verdict = "A" + verdict[1:] if verdict.startswith("a toss-up") else verdict
    out.print(visible(verdict + "."), highlight=False)
    width = max(len(visible(side.path.name)) for side in (c.a, c.b))
    for side in (c.a, c.b):
        shown = shown_score(side.score, side.low, side.high)
        out.print(f"  {visible(side.path.name):<{width}}  {shown}", highlight=False)
    lines = score_meaning(c.no_interval)
    if c.p_a_wins is None:
        lines.append(
            "No win probability: this model has no held-out calibration (train it with a "
            "validation split)."
        )
    else:
        first, second, p = (
            (c.a, c.b, c.p_a_wins) if c.p_a_wins >= 0.5 else (c.b, c.a, 1 - c.p_a_wins)
        )  # said of the likelier photo: "24% … (likely)" would read as a contradiction
        lines.append(
            f"{p:.0%}: how likely {first.path.name} gets more likes than "
            f"{second.path.name} ({odds_words(p)}), calibrated on {c.calibration}."
        )
    advice = [side.suggestion.text if side.suggestion else "" for side in (c.a, c.b)]
    if advice[0] and advice[0] == advice[1]:  # the same for both: said once
        lines.append(f"Advice for both: {_lower_first(advice[0])}")
    for side, text in zip((c.a, c.b), advice, strict=True):
        if text and advice[0] != advice[1]:
            lines.append(f"{side.path.name}: {text}")
        if side.crop is not None:
            lines.append(f"{side.path.name}: {side.crop.text}")
        if side.similar_posts is not None:
            lines.append(f"{side.path.name}: {history_cell(side.to_dict())}")
    for line in lines:
        say(line)
    _about_model(c.model, c.uncalibrated)
