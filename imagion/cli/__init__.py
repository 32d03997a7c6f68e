"""The `imagion` command line (a thin layer over the library).

`imagion.cli.app` is the leaf (the Typer app, error boundary, shared options); each command module
imports it and registers its commands when imported. They are imported here in workflow order,
which is the order `imagion --help` lists them in.
"""

import importlib

from imagion.cli.app import app

COMMAND_MODULES = [
    "catalog_commands",  # import, score, info, posts
    "labels_command",  # labels
    "model_commands",  # models, train
    "eval_command",  # eval
    "rank_commands",  # rank, compare
    "serve_command",  # serve
]
for _module in COMMAND_MODULES:
    importlib.import_module(f"imagion.cli.{_module}")


def main() -> None:
    app()


__all__ = ["app", "main"]
