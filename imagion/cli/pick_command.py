"""Groups of near-duplicates and the pick: `imagion pick`, and what `rank --groups` shows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.choices import Device
from imagion.cli.app import DeviceOpt, JsonOpt, ModelOpt, SimilarityOpt, about_model, command
from imagion.cli.console import emit_json, note, out, progress_bar, skipped_all, visible, warn
from imagion.cli.history_options import (
    CSV_FIELDS,
    AccountOpt,
    HistoryOpt,
    SimilarOpt,
    csv_cells,
    history_cell,
    history_given,
)
from imagion.errors import ImagionError
from imagion.files import writable_folder
from imagion.inference.groups import SIMILARITY, GroupResult, ShotsHook, group_images
from imagion.inference.history import K_SIMILAR, history_hook
from imagion.inference.pick import PickResult, check_n, pick_images
from imagion.inference.rank import check_output_folders, copy_ranked
from imagion.inference.sheet import check_sheet, write_pick_sheet
from imagion.scores import score_text
from imagion.spreadsheet import write_rows


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
    not_with_groups: dict[str, object],
    with_shots: ShotsHook | None = None,
) -> None:
    """`rank --groups`: every photo, group by group, each group's best first and the others
    folded under it; `--top K` shows the best K groups."""
    given = [flag for flag, value in not_with_groups.items() if value is not None]
    if given:
        raise ImagionError(
            f"{', '.join(given)}: not available with --groups; `imagion pick` copies and draws "
            "the best of each group (--copy-to, --sheet)."
        )
    with progress_bar("scoring") as update:
        result = group_images(
            paths, similarity=similarity, model=model, recursive=recursive,
            batch_size=batch_size, device=str(device), progress=update, suggest=suggest,
            stats=stats, with_shots=with_shots,
        )  # fmt: skip
    skipped_all(result.problems)
    shown = len(result.groups[: top or None])
    rows = [r for r in result.to_list() if r["group"] <= shown]
    if json_:
        emit_json(rows)
    elif csv_:
        import sys

        fields = ["rank", "path", "score", "raw", "group", "best_in_group", "suggestion"]
        if with_shots is not None:
            fields += CSV_FIELDS
            rows = [{**r, **csv_cells(r)} for r in rows]  # type: ignore[typeddict-item]
        write_rows(sys.stdout, fields, rows)
    else:
        out.print(_groups_table(result, top))
    note(
        f"ranked {result.photos} images in {len(result)} groups of near-duplicates "
        f"(similarity ≥ {result.similarity:g}), skipped {len(result.problems)}"
    )
    _about_grouping(result)


def _groups_table(result: GroupResult, top: int | None) -> Table:
    t = Table(
        title=f"groups of near-duplicates, best first · model {Path(result.model).name}",
        title_justify="left",
    )
    past = any(r.similar_posts is not None for g in result.groups for r in g.shots)
    for c in ("group", "#", "file", "score", "of its moment", *["your past posts"] * past):
        t.add_column(
            c, justify="right" if c in ("group", "#", "score") else "left", overflow="fold"
        )
    place = {r["path"]: r["rank"] for r in result.to_list()}
    calibrated = result.calibrated_on is not None
    for g in result.groups[: top or None]:
        for k, r in enumerate(g.shots):
            name = r.path.name if k == 0 else f"  └ {r.path.name}"
            cells = [
                str(g.number) if k == 0 else "",
                str(place[str(r.path)]),
                name,
                score_text(r.score),
                g.verdict(calibrated) if k == 0 else "",
            ]
            cells += [history_cell(r.to_dict()) or "—"] if past else []
            t.add_row(*map(visible, cells), style=None if k == 0 else "dim")
    return t


@command("pick")
def pick_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(help="The shoot: image files, folders or globs."),
    ],
    n: Annotated[int, typer.Option("-n", help="How many photos to pick (one per moment).")] = 5,
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
    history: HistoryOpt = None,
    account: AccountOpt = None,
    similar: SimilarOpt = K_SIMILAR,
) -> None:
    """Pick the n photos to post from a shoot: the best of the n best groups of near-duplicates, never two of one moment.

    Example: imagion pick ~/Pictures/trip -n 5 --copy-to ~/to-post
    """
    check_n(n)
    history_given(history, account, similar)
    hook = None if history is None else history_hook(history, account, similar)
    check_output_folders(paths, recursive, {"--copy-to": copy_to})
    if copy_to is not None:  # before the work, not after it
        writable_folder(copy_to, "--copy-to")
    if sheet is not None:
        check_sheet(sheet)
    with progress_bar("scoring") as update:
        result = pick_images(
            paths, n, similarity=similarity, model=model, recursive=recursive,
            batch_size=batch_size, device=str(device), progress=update, with_shots=hook,
        )  # fmt: skip
    skipped_all(result.problems)
    _pick_files(result, copy_to, sheet)
    if json_:
        emit_json(result.to_list())
    else:
        out.print(_pick_table(result))
    for line in result.notes:
        note(line)
    g = result.grouping
    note(f"picked {len(result)} of {g.photos} images ({len(g)} groups of near-duplicates)")
    _about_grouping(g)


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
        cells += [history_cell(p.photo.to_dict()) or "—"] if past else []
        t.add_row(*map(visible, cells))
    return t
