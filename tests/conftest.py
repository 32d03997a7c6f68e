"""Shared fixtures (the helpers they use live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers import make_instaloader, scored_catalog


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never write to the user's ~/.cache/imagion (restored after the session)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGION_CACHE", str(tmp_path_factory.mktemp("imagion-cache")))
        yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def small_ig(tmp_path: Path) -> Path:
    """4 accounts × 6 posts with distinct likes."""
    rng = np.random.default_rng(1)
    accounts = {
        f"acct{k}": [int(x) for x in rng.permutation(6) * 100 + 50 * k + 10] for k in range(4)
    }
    return make_instaloader(tmp_path / "ig", accounts)


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "cat.db"


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(catalog, checkpoint): a frozen-EfficientNet head trained on generated brightness data."""
    from imagion.training.loop import train
    from imagion.training.options import TrainOptions

    root = tmp_path_factory.mktemp("trained")
    db = scored_catalog(root, 6, 8, seed=5)
    opts = TrainOptions(
        arch="effnet-lite0",
        epochs=15,
        lr=1e-2,
        device="cpu",
        out=root / "run",
        cache_dir=root / "cache",
        val_fraction=0.34,
    )
    return db, train(db, opts).checkpoint
