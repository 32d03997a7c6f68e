"""Groups of near-duplicates and the pick: `imagion pick`, and what `rank --groups` shows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.choices import Device, XmpNaming
from imagion.cli.app import (
    DeviceOpt,
    FromTableOpt,
    IndexOpt,
    JsonOpt,
    ModelOpt,
    NoIndexOpt,
    SimilarityOpt,
    about_model,
    command,
    index_choice,
    photos_or_table,
)
from imagion.cli.console import (
    emit_csv,
    emit_json,
    note,
    out,
    progress_bar,
    shown_name,
    skipped_all,
    warn,
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
from imagion.cli.xmp_options import DryRunOpt, XmpNamingOpt, XmpOpt, check_xmp, write_xmp
from imagion.errors import ImagionError
from imagion.files import writable_folder
from imagion.inference.groups import GROUPS_CSV, SIMILARITY, GroupResult
from imagion.inference.history import K_SIMILAR
from imagion.inference.pick import PICK_CSV, PICK_N, PickResult, check_n, pick_table
from imagion.inference.quality import flag_text, with_quality_columns
from imagion.inference.rank import check_output_folders, copy_ranked
from imagion.inference.sheet import check_sheet, write_pick_sheet
from imagion.names import shorten_apart
from imagion.scores import score_text
from imagion.sidecars.xmp import marks_of_groups
from imagion.workflows.photos import group, pick


def _about_grouping(result: GroupResult) -> None:
    if not result.by_features:
        warn(
            f"{Path(result.model).name} gives no pooled features: only re-saved copies were "
            "grouped (EfficientNet-Lite0 models group near-duplicates)."
        )
    if result.calibrated_on is None:
        note(
            "no win probabilities: this model has no held-out calibration (train it with a "
            "validation split)"
        )
    about_model(result.model, result.uncalibrated)


def rank_groups(
    paths: list[str],
    *,
    model: Path | None,
    recursive: bool,
    top: int | None,
    similarity: float,
    batch_size: int | None,
    device: Device,
    suggest: bool,
    stats: Path | None,
    json_: bool,
    csv_: bool,
    xmp: bool = False,
    xmp_naming: XmpNaming = XmpNaming.adobe,
    dry_run: bool = False,
    index: Path | bool | None = None,
    from_table: Path | None = None,
    history: Path | None = None,
    account: str | None = None,
    similar: int = K_SIMILAR,
) -> None:
    """`rank --groups`: every photo, group by group, each group's best first and the others
    folded under it; `--top K` shows the best K groups (the flags of other modes were refused
    by rank_commands.check_mode)."""
    with progress_bar("scoring") as update:
        if from_table is not None:
            from imagion.inference.from_table import group_table  # pyarrow, only for a table

            result = group_table(
                from_table, similarity=similarity, model=model, device=str(device),
                progress=update, suggest=suggest, stats=stats,
            )  # fmt: skip
        else:
            result = group(
                paths, similarity=similarity, model=model, recursive=recursive,
                batch_size=batch_size, device=str(device), progress=update, suggest=suggest,
                stats=stats, index=index, history=history, account=account, similar=similar,
            )  # fmt: skip
    skipped_all(result.problems)
    shown = len(result.groups[: top or None])
    rows = [r for r in result.to_list() if r["group"] <= shown]
    if json_:
        emit_json(rows)
    elif csv_:
        flat = [with_quality_columns(r) for r in rows]
        if history is not None:
            flat = [{**f, **csv_cells(r)} for f, r in zip(flat, rows, strict=True)]
        emit_csv([*GROUPS_CSV, *CSV_FIELDS] if history is not None else GROUPS_CSV, flat)
    else:
        out.print(_groups_table(result, top))
    if xmp:
        write_xmp(marks_of_groups(result.groups, result.model), xmp_naming, dry_run)
    note(
        f"ranked {result.summary()} (similarity ≥ {result.similarity:g}), "
        f"skipped {len(result.problems)}"
    )
    _about_grouping(result)


FOLDED = "  └ "  # a runner-up's name, folded under its group's best
VERDICT_WIDTH = 24  # the narrowest the verdict column gets (it wraps between words)


def _groups_table(result: GroupResult, top: int | None) -> Table:
    """Every group, its best first and the others folded under it, at the terminal's width:
    names shortened in the middle (never broken across lines), the verdict wrapped."""
    t = Table(
        title=f"groups of near-duplicates, best first · model {Path(result.model).name}",
        title_justify="left",
    )
    groups = result.groups[: top or None]
    shots = [r for g in groups for r in g.shots]
    fixed = len("group") + max(len(str(result.photos)), 1) + len("score")
    names = [len(shown_name(r.path.name)) + len(FOLDED) for r in shots]
    room = max(out.width, 40) - (3 * 5 + 1) - fixed - VERDICT_WIDTH
    width = max(12, min(max(names, default=12), room))
    t.add_column("group", justify="right", no_wrap=True)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("file", no_wrap=True, width=width)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("of its moment", min_width=VERDICT_WIDTH)
    past = any(r.similar_posts is not None for r in shots)
    if past:
        t.add_column("your past posts", overflow="fold", min_width=12)
    place = {r["path"]: r["rank"] for r in result.to_list()}
    calibrated = result.calibrated_on is not None
    apart = iter(shorten_apart([shown_name(r.path.name) for r in shots], width - len(FOLDED)))
    for g in groups:
        for k, r in enumerate(g.shots):
            name = next(apart) if k == 0 else FOLDED + next(apart)
            cells = [
                str(g.number) if k == 0 else "",
                str(place[str(r.path)]),
                name,
                score_text(r.score),
                g.verdict(calibrated) if k == 0 else flag_text(r.quality),
            ]
            cells += [history_cell(r.to_dict()) or "—"] if past else []
            t.add_row(
                *cells[:2], name, *map(shown_name, cells[3:]), style=None if k == 0 else "dim"
            )
    return t


@command("pick")
def pick_cmd(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="The shoot: image files, folders or globs.", show_default=False),
    ] = None,
    n: Annotated[
        int, typer.Option("-n", help="How many photos to pick (one per moment).")
    ] = PICK_N,
    model: ModelOpt = None,
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Search folders recursively.")
    ] = False,
    similarity: SimilarityOpt = SIMILARITY,
    copy_to: Annotated[
        Path | None,
        typer.Option(
            help="Copy the picked photos here, named place_score_name (never replacing a file)."
        ),
    ] = None,
    sheet: Annotated[
        Path | None,
        typer.Option(
            help="Also draw the pick, each photo with its group's runners-up small beside it (.png, .jpg or .html)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass (default: by model).")
    ] = None,
    device: DeviceOpt = Device.auto,
    json_: JsonOpt = False,
    xmp: XmpOpt = False,
    xmp_naming: XmpNamingOpt = XmpNaming.adobe,
    dry_run: DryRunOpt = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
    history: HistoryOpt = None,
    account: AccountOpt = None,
    similar: SimilarOpt = K_SIMILAR,
    index: IndexOpt = None,
    no_index: NoIndexOpt = False,
    from_table: FromTableOpt = None,
) -> None:
    """Pick the n photos to post from a shoot: the best of the n best groups of near-duplicates, never two of one moment.

    Example: imagion pick ~/Pictures/trip -n 5 --copy-to ~/to-post
    """
    check_n(n)
    check_xmp(xmp, dry_run)
    history_given(history, account, similar)
    if json_ and csv_:
        raise ImagionError("--json and --csv: choose one.")
    paths = photos_or_table(paths, from_table)
    check_output_folders(paths, recursive, {"--copy-to": copy_to})
    if copy_to is not None:  # before the work, not after it
        writable_folder(copy_to, "--copy-to")
    if sheet is not None:
        check_sheet(sheet)
    with progress_bar("scoring") as update:
        if from_table is not None:
            result = pick_table(
                from_table, n, similarity=similarity, model=model, device=str(device),
                progress=update,
            )  # fmt: skip
        else:
            result = pick(
                paths, n, similarity=similarity, model=model, recursive=recursive,
                batch_size=batch_size, device=str(device), progress=update,
                index=index_choice(index, no_index), history=history, account=account,
                similar=similar,
            )  # fmt: skip
    skipped_all(result.problems)
    if json_:
        emit_json(result.to_list())
    elif csv_:
        emit_csv(PICK_CSV, [with_quality_columns(r) for r in result.to_list()])
    else:
        out.print(_pick_table(result))
    _pick_files(result, copy_to, sheet)  # after the results: a failed copy loses no table
    if xmp:
        g = result.grouping
        picked = [p.photo.path for p in result]
        write_xmp(marks_of_groups(g.groups, g.model, picked), xmp_naming, dry_run)
    for line in result.notes:
        note(line)
    note(f"picked {len(result)} of {result.grouping.summary()}")
    _about_grouping(result.grouping)


def _pick_files(result: PickResult, copy_to: Path | None, sheet: Path | None) -> None:
    if copy_to is not None:
        copied = copy_ranked([p.photo for p in result], copy_to)
        note(f"copied {len(copied)} images to {copy_to}")
    if sheet is not None:
        title = f"imagion pick · model {Path(result.grouping.model).name}"
        note(f"wrote {write_pick_sheet(result.picks, sheet, title)}")


def _pick_table(result: PickResult) -> Table:
    t = Table(
        title=f"the {len(result)} to post, one per moment · model {Path(result.grouping.model).name}",
        title_justify="left",
    )
    past = any(p.photo.similar_posts is not None for p in result)
    for c in ("#", "file", "score", "of its moment", *["your past posts"] * past):
        t.add_column(c, justify="right" if c in ("#", "score") else "left", overflow="fold")
    for p in result:
        cells = [str(p.place), p.photo.path.name, score_text(p.photo.score), p.text]
        if p.photo.quality is not None and p.photo.quality.flags:
            cells[3] += f" ({p.photo.quality.text})"
        cells += [history_cell(p.photo.to_dict()) or "—"] if past else []
        t.add_row(*map(shown_name, cells))
    return t
