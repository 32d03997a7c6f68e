"""imagion's errors: raised in the core with what to do, printed by the CLI without a traceback.

Errors are data: each subclass says which kind of thing is wrong (a catalog, a checkpoint, an
input file, an option, the model, a missing layer, an outside service), and an `OptionError` carries
the parameter and the value. Library text names parameters as Python does, in backticks
(`min_ratio`), never as command-line flags: the command line maps each to its flag (--min-ratio)
in one table (imagion.cli.app.FLAGS) when it prints the message."""

from __future__ import annotations

import re
from collections.abc import Callable

PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")  # a parameter named in a message


class ImagionError(Exception):
    """A user-facing error whose message says what went wrong and what to do."""


class CatalogError(ImagionError):
    """The catalog file: missing, foreign, newer, locked, read-only, empty."""


class CheckpointError(ImagionError):
    """A checkpoint: missing, not imagion's, damaged, of a newer format, not fitting the run."""


class InputError(ImagionError):
    """A file or folder the user gave: missing, unreadable, of the wrong kind."""


class ModelError(ImagionError):
    """The model cannot do what was asked: an unknown architecture or option, no pooled
    features (offline labels, feature caches, frozen backbones)."""


class MissingExtraError(ImagionError):
    """A layer of imagion that is not installed here (PyTorch, a model's weights, Ray, Cloud
    Vision); the message says which `pip install` adds it."""


class ServiceError(ImagionError):
    """Something outside the input refused: Cloud Vision, Ray, a network port."""


class OptionError(ImagionError):
    """A parameter with a value that cannot work; `option` is its Python name."""

    def __init__(self, option: str, value: object, reason: str) -> None:
        self.option, self.value, self.reason = option, value, reason
        shown = f" {value}" if str(value) != "" else ""
        super().__init__(f"`{option}`{shown}: {reason}")


def with_names(text: str, name_of: Callable[[str], str | None]) -> str:
    """`text` with each backticked parameter written as `name_of` says (None: left as it is)."""

    def one(m: re.Match[str]) -> str:
        name = name_of(m.group(1))
        return m.group(0) if name is None else name

    return PARAMETER.sub(one, text)
