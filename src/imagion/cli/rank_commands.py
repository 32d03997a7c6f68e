"""Scoring files: rank, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.choices import Device, EngineKind, XmpNaming
from imagion.cli.app import (
    DeviceOpt,
    FromTableOpt,
    IndexOpt,
    JsonOpt,
    ModelOpt,
    NoIndexOpt,
    SimilarityOpt,
    StatsOpt,
    command,
    index_choice,
    photos_or_table,
)
from imagion.cli.app import about_model as _about_model
from imagion.cli.console import (
    emit_csv,
    emit_json,
    note,
    out,
    plural,
    progress_bar,
    say,
    shown_name,
    skipped_all,
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
from imagion.inference.crops import LIKELY
from imagion.inference.groups import SIMILARITY
from imagion.inference.history import K_SIMILAR
from imagion.inference.quality import flag_words, with_quality_columns
from imagion.inference.rank import (
    RANK_CSV,
    RankResult,
    RankRow,
    check_output_folders,
    copy_top,
)
from imagion.inference.sheet import MAX_SHEET, check_sheet, write_sheet
from imagion.names import shorten_apart
from imagion.scale.ray_data import require_ray
from imagion.scale.tables import check_table
from imagion.scores import (
    EQUAL_SHOWN,
    NEXT_MEANING,
    odds_words,
    score_meaning,
    score_text,
    shown_score,
)
from imagion.sidecars.xmp import marks_of_ranking
from imagion.workflows.photos import check_top, compare, rank, rank_on_ray


def _tip(row: RankRow) -> str:
    """The table's last column: the technical flags, the labels seen (— when neither), and a
    crop likely to do better."""
    seen = ", ".join(row.get("labels", [])[:3])
    quality = row.get("quality", {})
    flags = flag_words(quality.get("flags"), quality.get("near_copy"))
    tip = "; ".join(t for t in (flags, seen) if t) or "—"
    crop = row.get("crop")
    if crop:
        tip += f"; crop to {crop['format']} ({crop['position']}): {score_text(crop['score'])}, P(better) {crop['p_better']:.0%}"
    return tip


# rank's three modes, and the options that belong to only some of them (one table: every
# other option goes with every mode)
MODES = {"plain": "rank alone", "groups": "--groups", "ray": "--engine ray"}
ONLY_IN = {
    "--copy-to": ("plain",),
    "--crops": ("plain",),
    "--sheet": ("plain",),
    "--csv": ("plain", "groups"),
    "--stats": ("plain", "groups"),
    "--groups": ("groups",),
    "--similarity": ("groups",),
    "--out": ("ray",),
    "--address": ("ray",),
    "--features": ("ray",),
    "--labels": ("ray",),
    "--xmp": ("plain", "groups"),
    "--from-table": ("groups",),
    "--history": ("plain", "groups"),
}
MODE_ADVICE = {
    "groups": " (`imagion pick` copies and draws the best of each group: --copy-to, --sheet)",
    "ray": " (use --out and --top)",
}


def check_mode(mode: str, given: list[str]) -> None:
    """The flags `given` that `mode` does not take: one line naming them and where they go."""
    wrong = [flag for flag in given if mode not in ONLY_IN.get(flag, tuple(MODES))]
    if wrong:
        where = " or ".join(MODES[m] for m in ONLY_IN[wrong[0]])
        raise ImagionError(
            f"{', '.join(wrong)}: not with {MODES[mode]}; {wrong[0]} goes with {where}"
            f"{MODE_ADVICE.get(mode, '')}."
        )


@command("rank")
def rank_cmd(  # over 60 lines: one Annotated option each; the body is ~30
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image files, folders or globs (JPEG, PNG, WebP, HEIC, AVIF, camera RAW…).",
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = None,
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Search folders recursively.")
    ] = False,
    top: Annotated[int | None, typer.Option(help="Show (and copy) only the best K.")] = None,
    copy_to: Annotated[
        Path | None, typer.Option(help="Copy the top images here, named rank_score_name.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass (default: by model).")
    ] = None,
    device: DeviceOpt = Device.auto,
    suggest: Annotated[
        bool, typer.Option(help="Add content suggestions (EfficientNet-Lite0 models).")
    ] = True,
    stats: StatsOpt = None,
    crops: Annotated[
        Path | None,
        typer.Option(
            help=f"Try Instagram's formats (1:1, 4:5, 1.91:1) on each photo; write the crops likely ({LIKELY}) to do better here."
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
    xmp: XmpOpt = False,
    xmp_naming: XmpNamingOpt = XmpNaming.adobe,
    dry_run: DryRunOpt = False,
    index: IndexOpt = None,
    no_index: NoIndexOpt = False,
    from_table: FromTableOpt = None,
    history: HistoryOpt = None,
    account: AccountOpt = None,
    similar: SimilarOpt = K_SIMILAR,
) -> None:
    """Score images 0–10 (5 = a typical post of the account) with an 80% range, best first.

    Example: imagion rank ~/Pictures/candidates/*.jpg --top 3 --copy-to ~/to-post
    One per moment: imagion rank ~/Pictures/trip --groups (or imagion pick ~/Pictures/trip -n 5)
    Millions of photos: imagion rank /data/photos -r --engine ray --out scores.parquet --top 100
    """
    check_top(top)  # the verb's check, before any mode starts work
    mode = "ray" if engine == EngineKind.ray else "groups" if groups else "plain"
    given = {
        "--copy-to": copy_to is not None, "--crops": crops is not None,
        "--sheet": sheet is not None, "--csv": csv_, "--groups": groups,
        "--similarity": similarity != SIMILARITY, "--stats": stats is not None,
        "--out": table is not None, "--address": address is not None, "--features": features,
        "--labels": labels, "--xmp": xmp, "--from-table": from_table is not None,
        "--history": history is not None,
    }  # fmt: skip
    check_mode(mode, [flag for flag, on in given.items() if on])
    paths = photos_or_table(paths, from_table)
    if json_ and csv_:
        raise ImagionError("--json and --csv: choose one.")
    check_xmp(xmp, dry_run)
    history_given(history, account, similar)
    if mode == "ray":
        _rank_on_ray(
            paths, model, recursive, top, table, address, device, batch_size, features, labels,
            json_,
        )  # fmt: skip
        return
    if mode == "groups":
        # registers `pick`: imported here so that `rank` and `compare` come before it in --help
        from imagion.cli.pick_command import rank_groups

        rank_groups(
            paths, model=model, recursive=recursive, top=top, similarity=similarity,
            batch_size=batch_size, device=device, suggest=suggest, stats=stats, json_=json_,
            csv_=csv_, xmp=xmp, xmp_naming=xmp_naming, dry_run=dry_run,
            index=index_choice(index, no_index), from_table=from_table,
            history=history, account=account, similar=similar,
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
            index=index_choice(index, no_index),
            history=history,
            account=account,
            similar=similar,
        )
    skipped_all(result.problems)
    rows = result.to_list()
    if crops is not None:
        if result.crops_written:
            note(
                f"wrote {len(result.crops_written)} crop(s) likely ({LIKELY}) to do better to {crops}"
            )
        else:
            note(
                f"no crop is likely ({LIKELY}) to do better than its photo; nothing written to {crops}"
            )
    if json_:
        emit_json(rows)
    elif csv_:
        _write_csv(rows)
    else:
        out.print(_rank_table(rows, f"model {Path(result.model).name} ({result.arch})"))
        for line in _rank_notes(rows, result.no_interval):
            say(line)
        if result.off_centre:
            say(result.off_centre)
    _files_out(result, top, copy_to, sheet)  # after the results: a failed copy loses no table
    if xmp:
        write_xmp(marks_of_ranking(result.items, result.model, result.scored), xmp_naming, dry_run)
    note(f"ranked {plural(result.scored, 'image')}, skipped {len(result.problems)}")
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
) -> None:
    """`rank --engine ray`: the table on disk, a summary, the best K."""
    require_ray()  # a missing extra is said before anything else
    if table is not None:
        check_table(table)  # and anything in the way of --out, before the first note
    note("scoring on Ray Data…")
    with progress_bar("scoring") as update:
        result = rank_on_ray(
            paths, model=model, recursive=recursive, top=top, out=table, address=address,
            device=device, batch_size=batch_size, features=features, labels=labels,
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
            t.add_row(str(k), shown_name(Path(r["path"]).name), score_text(r["score"]))
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
    """`rank --csv`: RANK_CSV, and the similar past posts' columns with a history."""
    fields, flat = RANK_CSV, [with_quality_columns(r) for r in rows]
    if any("similar_posts" in r for r in rows):
        fields = [*RANK_CSV, *CSV_FIELDS]
        flat = [{**f, **csv_cells(r)} for f, r in zip(flat, rows, strict=True)]
    emit_csv(fields, flat)


def _rank_notes(rows: list[RankRow], no_interval: str | None) -> list[str]:
    """What the numbers mean (one sentence each) and the advice: once when every photo gets the
    same, else for the photos it concerns; cautions on the photos they concern."""
    lines = score_meaning(no_interval)
    if any("p_beats_next" in r for r in rows):
        lines.append(NEXT_MEANING)
    if any(_equal_shown(rows, k) for k in range(len(rows))):
        lines.append(EQUAL_SHOWN)
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
            lines.append(f"{_ranks(ranks, [r['rank'] for r in rows])}: {text}")
    return lines


def _equal_shown(rows: list[RankRow], k: int) -> bool:
    """Whether row k has a chance against the next row while both show the same score."""
    return (
        "p_beats_next" in rows[k]
        and k + 1 < len(rows)
        and score_text(rows[k]["score"]) == score_text(rows[k + 1]["score"])
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


MAX_EXCEPTIONS = 3  # "every photo but #a, #b, #c"; more: the photos are named


def _ranks(ranks: list[int], shown: list[int]) -> str:
    """The photos a line concerns: "#4", "photos #1, #3, #9–#20", or "every photo but #77"
    when naming the few others is shorter."""
    if len(ranks) == 1:
        return f"#{ranks[0]}"
    taken = set(ranks)
    others = [k for k in shown if k not in taken]
    if others and len(others) <= MAX_EXCEPTIONS and len(others) < len(ranks):
        return "every photo but " + _spans(others)
    return "photos " + _spans(ranks)


def _spans(ranks: list[int]) -> str:
    """#1, #3, #9–#20: runs of 3 or more written as ranges."""
    parts: list[str] = []
    ordered = sorted(ranks)
    start = 0
    for k in range(1, len(ordered) + 1):
        if k == len(ordered) or ordered[k] != ordered[k - 1] + 1:
            run = ordered[start:k]
            parts += [f"#{run[0]}–#{run[-1]}"] if len(run) >= 3 else [f"#{n}" for n in run]
            start = k
    return ", ".join(parts)


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
    with_tips = any(
        "suggestion" in r or "crop" in r or r.get("quality", {}).get("flags") for r in rows
    )
    heads = ["#", "file", "score (80% range)" if any("score_low" in r for r in rows) else "score"]
    past = any("similar_posts" in r for r in rows)
    heads += ["P(> next)"] * sure + ["seen"] * with_tips + ["your past posts"] * past
    fixed = [max(len(str(len(rows))), 1), max(map(len, [heads[2], *scores]))]
    fixed += [len("P(> next)")] * sure
    names = [shown_name(n) for n in _display_names(rows)]
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
    for k, (r, name, shown) in enumerate(
        zip(rows, shorten_apart(names, width), scores, strict=True)
    ):
        cells = [str(r["rank"]), name, shown]
        chance = f"{r['p_beats_next']:.0%}" if "p_beats_next" in r else ""
        cells += [("= " if _equal_shown(rows, k) else "") + chance] if sure else []
        cells += [_tip(r)] if with_tips else []
        cells += [history_cell(r) or "—"] if past else []
        table.add_row(*map(shown_name, cells))
    return table


@command("compare")
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="First image.")],
    b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
    stats: StatsOpt = None,
    json_: JsonOpt = False,
    index: IndexOpt = None,
    no_index: NoIndexOpt = False,
    history: HistoryOpt = None,
    account: AccountOpt = None,
    similar: SimilarOpt = K_SIMILAR,
) -> None:
    """Which of two images will get more attention? Prints the winner, both scores and P(A beats B).

    Example: imagion compare beach.jpg city.jpg
    """
    history_given(history, account, similar)
    c = compare(
        a, b, model=model, device=device, stats=stats, index=index_choice(index, no_index),
        history=history, account=account, similar=similar,
    )  # fmt: skip
    if json_:
        emit_json(c.to_dict())
        return
    verdict = c.verdict()
    verdict = "A" + verdict[1:] if c.toss_up else verdict  # a sentence starts with a capital
    say(verdict + ".")  # wrapped at the terminal's width, as every line below
    scores = [shown_score(side.score, side.low, side.high) for side in (c.a, c.b)]
    room = max(out.width, 40) - 4 - max(map(len, scores))
    names = shorten_apart([shown_name(side.path.name) for side in (c.a, c.b)], room)
    width = max(map(len, names))
    for name, shown in zip(names, scores, strict=True):
        out.print(f"  {name:<{width}}  {shown}", highlight=False)
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
        if side.quality is not None and side.quality.flags:
            lines.append(f"{side.path.name}: {side.quality.text}.")
        if side.similar_posts is not None:
            lines.append(f"{side.path.name}: {history_cell(side.to_dict())}")
    for line in lines:
        say(line)
    _about_model(c.model, c.uncalibrated)
