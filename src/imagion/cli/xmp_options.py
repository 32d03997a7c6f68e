"""--xmp, --xmp-naming and --dry-run of rank and pick: XMP sidecars for photo managers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from imagion.choices import XmpNaming
from imagion.cli.console import note, shown_name, skipped_all
from imagion.errors import ImagionError
from imagion.sidecars.xmp import Marks, write_sidecars

PANEL = "Photo managers"
XmpOpt = Annotated[
    bool,
    typer.Option(
        "--xmp",
        help="Write an XMP sidecar next to each photo (stars, a green label and keyword for picks, the group as a keyword, the score): Lightroom, Capture One, Bridge, darktable, digiKam read it. An existing sidecar keeps everything else it has.",
        rich_help_panel=PANEL,
    ),
]
XmpNamingOpt = Annotated[
    XmpNaming,
    typer.Option(
        help="Sidecar names: adobe = IMG_0001.xmp (Lightroom, Capture One, Bridge), darktable = IMG_0001.CR2.xmp (darktable, digiKam).",
        rich_help_panel=PANEL,
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="With --xmp: say which sidecars would be written, and what, without writing any.",
        rich_help_panel=PANEL,
    ),
]


def check_xmp(xmp: bool, dry_run: bool) -> None:
    if dry_run and not xmp:
        raise ImagionError(
            "--dry-run goes with --xmp (it shows the sidecars that would be written)."
        )


def write_xmp(marks: Sequence[Marks], naming: XmpNaming, dry_run: bool) -> None:
    """Write (or, dry, show) the sidecars; every line on stderr, the results stay on stdout."""
    report = write_sidecars(marks, naming, dry_run)
    if dry_run:
        for side, m, exists in report.planned:
            note(f"would {'update' if exists else 'write'} {shown_name(side)}: {m.summary()}")
    for line in report.kept:
        note(line)
    skipped_all(report.problems)
    done = len(report.planned) if dry_run else len(report.written)
    verb = "would write" if dry_run else "wrote"
    note(
        f"{verb} {done} XMP sidecar(s) ({naming.value} naming), {len(report.problems)} not written"
    )
