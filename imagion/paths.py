"""Where imagion keeps things: the cache folder and the files shipped in the package."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "IMAGION_CACHE"
DATA = Path(__file__).parent / "data"


def default_cache_dir() -> Path:
    """$IMAGION_CACHE, else ~/.cache/imagion."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "imagion"


def bundled_model_path() -> Path:
    return DATA / "default-model.pt"


def bundled_stats_path() -> Path:
    return DATA / "label-stats-local.json"
