"""Where the benches find the real datasets: `--datasets`, else $IMAGION_DATASETS, else
../shared/datasets beside the clone (as tests/helpers.py `dataset` looks)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_datasets() -> Path:
    return Path(os.environ.get("IMAGION_DATASETS", ROOT.parent / "shared" / "datasets"))


def add_datasets_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--datasets", type=Path, default=default_datasets())
