"""What `--history` adds to `rank`: 100 photos ranked by the bundled model, with and without
looking up 3 similar posts (and "already posted") among 10,000 catalog posts, in one run.

The 10,000 posts' features are generated (unit vectors of the model's feature width, random
hashes): the lookup's cost does not depend on what they show, and computing real ones is a
one-time cost that the cache keeps (`rank --history` shows its progress on first use). The two
passes are timed alternately, `--repeats` times each, and the medians compared.

Usage: python bench/history_lookup.py [--photos 100] [--posts 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imagion.inference.engine import open_engine  # noqa: E402
from imagion.inference.groups import _score_shots  # noqa: E402
from imagion.inference.history import History, attach  # noqa: E402
from imagion.inference.past_posts import PastPost  # noqa: E402
from imagion.inference.rank import score_files  # noqa: E402
from tests.helpers import write_image  # noqa: E402


def generated_history(n: int, dim: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, dim)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    t0 = 1_600_000_000
    posts = [
        PastPost("me", f"p{k}", t0 + 3600 * k, float(k % 100) / 10, 0.0, f"{k}.jpg")
        for k in range(n)
    ]
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    times = np.array([p.posted_at for p in posts], dtype=np.float64)
    return History(Path("me.db"), "me", posts, feats, hashes, rng.uniform(0, 255, (n, 3)), times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    engine = open_engine(None, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        files = [
            write_image(Path(tmp) / f"p{k:03d}.jpg", 0.2 + 0.6 * (k % 7) / 6, size=480, seed=k)
            for k in range(args.photos)
        ]
        _, probe = engine.forward(
            np.zeros((1, engine.preprocess.size, engine.preprocess.size, 3), np.uint8), True
        )
        assert probe is not None, "the bundled model gives pooled features"
        history = generated_history(args.posts, probe.shape[1])
        plain, with_history, lookup = [], [], []
        score_files(engine, files)  # warm-up: the session, the page cache
        for _ in range(args.repeats):
            t = time.perf_counter()
            score_files(engine, files)
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            items, shots, _ = _score_shots(engine, files, None, True, None)
            u = time.perf_counter()
            attach(history, items, shots, 3)
            lookup.append(time.perf_counter() - u)
            with_history.append(time.perf_counter() - t)
    a, b = statistics.median(plain), statistics.median(with_history)
    print(
        f"rank of {args.photos} photos: {a:.2f} s; with --history ({args.posts:,} posts): "
        f"{b:.2f} s, of which the lookup {statistics.median(lookup) * 1000:.0f} ms"
    )
    print(f"ratio {b / a:.3f} (+{(b / a - 1):.1%}; the goal: at most +10%)")


if __name__ == "__main__":
    main()
