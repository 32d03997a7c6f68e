"""The `imagion` command line (a thin layer over the library).

`imagion.cli.app` is the leaf (the Typer app, error boundary, shared options); each command module
imports it and registers its commands when imported. They are imported here in the order
`imagion --help` lists them in: what a newcomer wants first (rank, compare, pick: the bundled
model on their own photos), then their own model in workflow order (import … eval), then serve.
"""

import importlib

from imagion.cli.app import app, reader_left
from imagion.cli.console import err, styled
from imagion.cli.help_layout import polish

COMMAND_MODULES = [
    "rank_commands",  # rank, compare
    "pick_command",  # pick
    "catalog_commands",  # import, score, info, posts
    "labels_command",  # labels
    "model_commands",  # models, featurize, train
    "eval_command",  # eval
    "serve_command",  # serve
]
for _module in COMMAND_MODULES:
    importlib.import_module(f"imagion.cli.{_module}")


def build_command() -> object:
    """The click command tree Typer builds from `app`, with imagion's help layout."""
    import typer.main

    command = typer.main.get_command(app)
    polish(command)
    return command


def main() -> None:
    """The console script: a usage mistake (an unknown option, a bad value, a misspelt command)
    is one `error:` line and exit status 1, like every other mistake."""
    import sys

    import typer

    try:  # the click Typer runs on: recent Typer ships its own copy
        import typer._click.exceptions as click
    except ImportError:  # pragma: no cover - older Typer on the public click
        import click.exceptions as click  # type: ignore[no-redef]

    try:
        code = build_command().main(prog_name="imagion", standalone_mode=False)  # type: ignore[attr-defined]
    except click.NoArgsIsHelpError:  # `imagion` alone: Typer has printed the help
        sys.exit(0)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "imagion"
        err.print(styled("error:", "red", f"{exc.format_message()} (see {where} --help)"))
        sys.exit(1)
    except click.ClickException as exc:
        err.print(styled("error:", "red", exc.format_message()))
        sys.exit(1)
    except typer.Abort:
        err.print("interrupted")
        sys.exit(130)
    try:
        sys.stdout.flush()  # the last buffered results: the reader may be gone (`| head`)
    except BrokenPipeError:
        sys.exit(reader_left())
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "build_command", "main"]
