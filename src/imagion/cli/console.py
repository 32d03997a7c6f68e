"""Terminal plumbing shared by the commands: consoles, progress bars, JSON output, errors."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from imagion.errors import with_names
from imagion.names import shorten, shown_name, visible  # noqa: F401 (the commands' names)
from imagion.problems import ProblemLog
from imagion.spreadsheet import write_rows

# markup=False: user text (an account named "[/acct]", a file "[bold]b.jpg", a caption) is
# printed as it is, never read as Rich markup; our own styles are given as Text
# under torchrun only the first process speaks: the others would repeat every line
_QUIET = os.environ.get("RANK", "0") not in ("", "0")
# emoji=False: a caption or file name holding ":smile:" is text, not an emoji
out = Console(soft_wrap=True, markup=False, emoji=False, quiet=_QUIET)  # results
err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False, quiet=_QUIET)  # logs


def say(text: str) -> None:
    """A line of results on stdout wrapped to the terminal's width (`out` soft-wraps nothing:
    a long line would otherwise run past 80 columns)."""
    import textwrap

    width = max(out.width, 40)
    for para in for_cli(text).split("\n"):
        print(textwrap.fill(para, width, subsequent_indent="  ", break_on_hyphens=False))
    sys.stdout.flush()


def plural(n: int, word: str) -> str:
    """ "1 pair", "2 pairs", "1,200 accounts"."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _as_given(name: str) -> str | None:
    return None


# How a parameter named in library text (`min_ratio`) is written on the command line; the app
# sets it to its flag table (imagion.cli.app.flag_of) when it is imported.
namer: Callable[[str], str | None] = _as_given


def set_namer(name_of: Callable[[str], str | None]) -> None:
    global namer
    namer = name_of


def for_cli(message: object) -> str:
    """Library text as the command line says it: parameters as flags, control characters shown."""
    return visible(with_names(str(message), namer))


def styled(label: str, style: str, message: object) -> Text:
    """`label` in `style`, then the message as plain, visible text (parameters as flags)."""
    return Text.assemble((label, style), " ", for_cli(message))


def json_safe(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by null (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    if hasattr(data, "item") and callable(data.item) and getattr(data, "ndim", 1) == 0:
        return json_safe(data.item())  # numpy scalars
    return data


def emit_json(data: Any) -> None:
    """Write JSON results to stdout (never through Rich, which would wrap lines); strict JSON:
    a NaN or infinity becomes null."""
    sys.stdout.write(json.dumps(json_safe(data), indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def emit_csv(fields: list[str], rows: Any) -> None:
    """Write CSV results to stdout: the JSON rows' `fields`, safe to open in a spreadsheet."""
    write_rows(sys.stdout, fields, rows)
    sys.stdout.flush()


def warn(message: str) -> None:
    err.print(styled("warning:", "yellow", message), highlight=False)


def note(message: str) -> None:
    """A note on stderr: wrapped to the terminal's width in a terminal (a following line
    indented), one line per note when stderr is a file or a pipe (a log greps by line)."""
    text = for_cli(message)
    if err.is_terminal and len(text) > err.width:
        import textwrap

        text = textwrap.fill(
            text, max(err.width, 40), subsequent_indent="  ", break_on_hyphens=False
        )
    err.print(text, highlight=False)


def skipped(problem: str) -> None:
    err.print(styled("skipped:", "yellow", problem), highlight=False)


def skipped_all(problems: list[str]) -> None:
    """Each problem as a `skipped:` line, bounded: the first and last few, and a count."""
    for problem in ProblemLog(problems).lines():
        skipped(problem)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM (a `kill`, a container stopping) is handled as Ctrl-C is, so work that
    saves what it has on Ctrl-C (paid Cloud Vision labels) saves it on SIGTERM too."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A Rich progress bar on stderr; yields `update(done, total=None, **fields)`."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as prog:
        task = prog.add_task(description, total=total, info="")

        def update(done: int, total: int | None = None, stage: str = "", info: str = "") -> None:
            """The library's progress protocol (imagion.progress.Progress) drawn as a bar."""
            prog.update(
                task,
                completed=done,
                total=total if total is not None else None,
                description=stage or description,
                info=info,
            )

        yield update
