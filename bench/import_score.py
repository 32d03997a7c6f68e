"""Time `imagion import` on profilecrawl-978 and scoring 1,000,000 generated posts.

Prints each figure next to its target. Usage: python bench/import_score.py [DATASETS_DIR]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from imagion.catalog.scoring import score_frame

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    datasets = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets"
    crawl = datasets / "profilecrawl-978"
    if crawl.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-m",
                "imagion",
                "import",
                str(crawl),
                "--catalog",
                f"{tmp}/b.db",
            ]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            t_import = time.perf_counter() - t0
        print(
            f"import profilecrawl-978 (16,539 posts, whole process): {t_import:.2f} s  (target < 5 s)"
        )
    else:
        print(f"import: skipped, {crawl} is absent")

    rng = np.random.default_rng(0)
    n, accounts = 1_000_000, 50_000
    acct = np.sort(rng.integers(0, accounts, n))
    df = pd.DataFrame(
        {
            "account": acct.astype(str),
            "likes": rng.lognormal(6, 1.2, n).round(),
            "likes_hidden": False,
            "posted_at": rng.integers(1.5e9, 1.7e9, n),
        }
    )
    for label, kw in (("all posts", {}), ("--window 10", {"window": 10}), ("--log", {"log": True})):
        t0 = time.perf_counter()
        _, report = score_frame(df, **kw)
        dt = time.perf_counter() - t0
        print(
            f"score 1,000,000 posts of {accounts:,} accounts ({label}): {dt:.2f} s  (target < 3 s); "
            f"scored {report.scored:,}"
        )


if __name__ == "__main__":
    main()
