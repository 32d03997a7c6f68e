"""The types the public API takes, in one place (as httpx's `_types.py`)."""

from __future__ import annotations

import os
from typing import TypeAlias

PathLike: TypeAlias = str | os.PathLike[str]  # every parameter that takes a path takes either

# what a JSON document holds: the free-form parts of a checkpoint's card
JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
