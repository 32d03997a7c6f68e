"""How `--help` lays out options: flags without a type column, lists named by what they hold,
and long commands (`eval`, `train`) grouped into panels. Applied once, to the click command tree
that Typer builds, so each option is still declared in one place."""

from __future__ import annotations

from typing import Any

from imagion.cli.training_options import TRAINING_FIELDS

RECIPE_PANEL = "Training recipe (train; eval --cv)"
# command → panel → its options (by parameter name); options not listed stay under "Options"
PANELS: dict[str, dict[str, tuple[str, ...]]] = {
    "eval": {
        "Which posts and pairs": (
            "accounts",
            "split",
            "pairs",
            "seed",
            "min_gap",
            "min_ratio",
        ),
        "Cross-validation": ("cv", "time_blocks", "out"),
        "Output": ("show_pairs", "pairs_out", "plot", "json_"),
    },
    "train": {"Run": ("out", "resume", "seed", "split", "account", "stats", "json_")},
}


def _element(param: Any) -> str:
    text = str(param.display_type_rich(None) or "").removesuffix("...").strip("<>")
    inner = text.removeprefix("list[").removesuffix("]")
    return {"str": "text", "Path": "path"}.get(inner, inner) or "value"


def _quiet_help_option(command: Any) -> None:
    """-h/--help is made per call by click: give it no type column either."""
    original = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option


def polish(command: Any, name: str = "") -> None:
    """Rewrite the help metadata of `command` and its subcommands in place."""
    for sub_name, sub in getattr(command, "commands", {}).items():
        polish(sub, sub_name)
    _quiet_help_option(command)
    panels = {p: panel for panel, names in PANELS.get(name, {}).items() for p in names}
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value: "<bool>" says nothing
        elif getattr(param, "multiple", False):
            param.metavar = f"<{_element(param)}>"  # once per value: --account a --account b
        elif param.param_type_name == "argument" and param.nargs != 1:
            shown = f"<{_element(param)}>"  # its name already says "paths..."
            param.display_type_rich = lambda ctx, shown=shown: shown
        if param.name in TRAINING_FIELDS:
            param.rich_help_panel = RECIPE_PANEL
        elif param.name in panels:
            param.rich_help_panel = panels[param.name]
