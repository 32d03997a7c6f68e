"""How `--help` lays out options: flags without a type column, lists named by what they hold,
arguments in the usage line as `PATH...` (not Typer's `{paths}...`), one name per option (an
alias such as `--accounts` still works but is not listed), and long commands (`eval`, `train`)
grouped into panels. Applied once, to the click command tree that Typer builds, so each option
is still declared in one place."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from imagion.cli.training_options import TRAINING_FIELDS

RECIPE_PANEL = "Training recipe (train; eval --cv)"
RECIPE_COMMANDS = ("train", "eval")  # elsewhere (rank --batch-size) a field is no recipe
# how an argument is written in the usage line (by parameter name; else its name in capitals)
ARGUMENT_NAMES = {"paths": "PATH", "sources": "SOURCE"}
# the type column in the words the help text uses
TYPE_WORDS = {"str": "text", "Path": "path", "int range": "int", "float range": "float"}
# a list of choices longer than this is written `<a | b | c>`, so that --help wraps it between
# choices at 80 columns (`<likes|engagement|comments|…|impres` / `sions>` broke a word)
LONG_CHOICES = 24
# command → panel → its options (by parameter name); options not listed stay under "Options"
PANELS: dict[str, dict[str, tuple[str, ...]]] = {
    "eval": {
        "Which posts and pairs": (
            "accounts",
            "split",
            "same_posts_as",
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
    return TYPE_WORDS.get(inner, inner) or "value"


def _wrappable(shown: str) -> str:
    """A long list of choices with room to wrap between them, never inside one."""
    return shown.replace("|", " | ") if len(shown) > LONG_CHOICES else shown


def _plain_type(param: Any) -> None:
    """`<str>`, `<int range>` in the type column as `<text>`, `<int>`."""
    original: Callable[..., Any] = param.display_type_rich

    def shown(ctx: Any) -> Any:
        text = original(ctx)
        if isinstance(text, str) and text.startswith("<") and text.endswith(">"):
            return _wrappable(f"<{TYPE_WORDS.get(text[1:-1], text[1:-1])}>")
        return text

    param.display_type_rich = shown


def _usage_name(param: Any) -> None:
    """The usage line and the Arguments panel name an argument as `PATH...` or `A`, never
    Typer's `{paths}...`."""
    name = ARGUMENT_NAMES.get(param.name, param.name.upper())
    listed = name + ("..." if param.nargs != 1 else "")
    shown = listed if param.required else f"[{listed}]"
    param._usage_display_name = lambda: shown
    param.metavar = listed  # the Arguments panel and "Missing argument 'PATH...'" say the same


def _one_name_per_option(command: Any) -> None:
    """Help lists each option under its first long name (`--account`, not
    `--account,--accounts`); the aliases stay in `opts`, so parsing still takes them."""
    original = command.format_help

    def format_help(ctx: Any, formatter: Any) -> Any:
        saved = {id(p): p.opts for p in command.params if len(p.opts) > 1}
        for p in command.params:
            longs = [o for o in p.opts if o.startswith("--")]
            if len(longs) > 1:
                p.opts = [o for o in p.opts if not o.startswith("--")] + longs[:1]
        try:
            return original(ctx, formatter)
        finally:
            for p in command.params:
                p.opts = saved.get(id(p), p.opts)

    command.format_help = format_help


def _joined(text: str | None) -> str | None:
    """A docstring's hard line breaks inside a sentence joined (Typer keeps them in every
    paragraph after the first); a line that starts with a capital stays its own line."""
    if not text:
        return text
    return re.sub(r"(?<=\S)[ \t]*\n[ \t]*(?=[a-z(`])", " ", text)


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
    _one_name_per_option(command)
    command.help = _joined(command.help)
    panels = {p: panel for panel, names in PANELS.get(name, {}).items() for p in names}
    for param in getattr(command, "params", []):
        if param.param_type_name == "argument":
            _usage_name(param)
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value: "<bool>" says nothing
        elif getattr(param, "multiple", False):
            param.metavar = _wrappable(f"<{_element(param)}>")  # once per value: -p a -p b
        elif param.param_type_name == "argument" and param.nargs != 1:
            shown = f"<{_element(param)}>"  # its name already says "paths..."
            param.display_type_rich = lambda ctx, shown=shown: shown
        else:
            _plain_type(param)
        if param.name in TRAINING_FIELDS and name in RECIPE_COMMANDS:
            param.rich_help_panel = RECIPE_PANEL
        elif param.name in panels:
            param.rich_help_panel = panels[param.name]
