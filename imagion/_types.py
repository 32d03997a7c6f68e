"""The types the public API takes, in one place (as httpx's `_types.py`)."""

from __future__ import annotations

import os
from typing import TypeAlias

PathLike: TypeAlias = str | os.PathLike[str]  # every parameter that takes a path takes either
