"""Grouping time and peak memory on generated feature sets of 10,000 to 100,000 photos.

What the ranking pass stores per photo, generated: pooled features like the bundled model's
(1,280 non-negative values, float16 as the index keeps them; unrelated photos ≈ 0.64 cosine),
a 64-bit perceptual hash, a mean colour and a capture time. Each scene has 1–7 near-copies
(cosine ≈ 0.93 to their scene; half of them re-saved copies with the scene's hash), taken within a
second. Each size runs in its own process (its peak memory is its own); the time is
`imagion.inference.groups.cluster` alone (candidate neighbours + the grouping rule), the input
in a shuffled order; pairwise precision and recall against the scenes are printed beside it, and
the growth from one size to the next beside N log N's.

Usage: python bench/group_scale.py [--sizes 10000 30000 100000] [--dims 1280]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imagion.inference.groups import Shots, cluster  # noqa: E402


def generated(n: int, dims: int, seed: int = 0) -> tuple[Shots, np.ndarray]:
    """`n` photos of about n/4 scenes, and each photo's scene."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, n)  # photos per scene
    scene = np.repeat(np.arange(n), sizes)[:n]
    m = scene[-1] + 1
    feats = np.empty((n, dims), np.float16)
    base = np.abs(rng.standard_normal((m, dims), np.float32))
    for s in range(0, n, 8192):
        sc = scene[s : s + 8192]
        f = base[sc] * (1 + 0.35 * rng.standard_normal((len(sc), dims), np.float32))
        f = np.maximum(f, 0)
        feats[s : s + 8192] = f / np.linalg.norm(f, axis=1, keepdims=True)
    scene_hash = rng.integers(0, 2**63, m, dtype=np.int64).astype(np.uint64)
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    resaved = rng.random(n) < 0.5
    hashes[resaved] = scene_hash[scene[resaved]]
    colours = rng.uniform(0, 255, (m, 3))[scene] + rng.normal(0, 2, (n, 3))
    when = rng.uniform(0, 3e7, m)[scene] + rng.uniform(0, 1, n)
    times: list[float | None] = [float(t) if k % 3 else None for k, t in enumerate(when)]
    return Shots([Path(f"{k}.jpg") for k in range(n)], feats, hashes, colours, times), scene


def quality(groups: list[list[int]], scene: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall, counted per group and per scene (no N×N matrix)."""
    g = np.empty(len(scene), np.int64)
    for k, members in enumerate(groups):
        g[members] = k
    pairs = lambda counts: int((counts * (counts - 1) // 2).sum())  # noqa: E731
    both = pairs(np.unique(g * (scene.max() + 1) + scene, return_counts=True)[1])
    together = pairs(np.unique(g, return_counts=True)[1])
    same = pairs(np.unique(scene, return_counts=True)[1])
    return both / max(together, 1), both / max(same, 1)


def one(n: int, dims: int) -> dict[str, float]:
    shots, scene = generated(n, dims)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    order = np.random.default_rng(1).permutation(n).tolist()  # the best-first order, shuffled
    start, cpu = time.perf_counter(), time.process_time()
    groups = cluster(order, shots)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision, recall = quality(groups, scene)
    return {
        "n": n,
        "seconds": took,
        "cpu_seconds": cpu,
        "peak_mib": peak,
        "inputs_mib": before,
        "groups": len(groups),
        "precision": precision,
        "recall": recall,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--dims", type=int, default=1280)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.dims)))
        return
    prev = None
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--dims", str(args.dims)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        growth = ""
        if prev is not None:
            nlogn = (n * math.log(n)) / (prev["n"] * math.log(prev["n"]))
            growth = f" · ×{r['seconds'] / prev['seconds']:.1f} for N log N's ×{nlogn:.1f}"
        print(
            f"{n:>7,} photos: {r['seconds']:6.1f} s (CPU {r['cpu_seconds']:.1f} s) · peak {r['peak_mib']:,.0f} MiB "
            f"(inputs {r['inputs_mib']:,.0f}) · {r['groups']:,} groups · precision "
            f"{r['precision']:.3f} recall {r['recall']:.3f}{growth}",
            flush=True,
        )
        prev = r


if __name__ == "__main__":
    main()
