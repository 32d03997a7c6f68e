"""Grouping precision and recall on generated bursts, at several `similarity` thresholds.

Generated source photos (tests/bursts.py: gradients, textures, shapes) × 5 near-duplicates each
(a crop, an exposure change, a low JPEG quality, a small rotation, a horizontal shift) are scored
once by the bundled model (one pass: scores, pooled features, perceptual hashes); then grouped at
each threshold. Pairwise precision: of the pairs put in one group, the share from one source;
recall: of the pairs from one source, the share put in one group. Also: variants in the group
where most of their source is, and groups that mix sources.

Usage: python bench/group_quality.py [--sources 10 200] [--size 480]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imagion.inference.engine import open_engine  # noqa: E402
from imagion.inference.groups import SIMILARITY, _score_shots, cluster  # noqa: E402
from tests.bursts import write_bursts  # noqa: E402


def measure(groups: list[list[int]], source: np.ndarray) -> str:
    g = np.empty(len(source), int)
    for k, members in enumerate(groups):
        g[members] = k
    same, together = source[:, None] == source[None], g[:, None] == g[None]
    off = ~np.eye(len(g), dtype=bool)
    tp = (same & together & off).sum()
    precision = tp / max((together & off).sum(), 1)
    recall = tp / max((same & off).sum(), 1)
    own = sum(np.unique(g[source == s], return_counts=True)[1].max() for s in set(source))
    mixed = sum(len(set(source[g == k])) > 1 for k in range(len(groups)))
    return (
        f"precision {precision:.3f} · recall {recall:.3f} · with their source {own}/{len(g)} · "
        f"{len(groups)} groups, {mixed} mixing sources"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, nargs="+", default=[10, 200])
    ap.add_argument("--size", type=int, default=480, help="width of the photos (4:3)")
    args = ap.parse_args()
    engine = open_engine(None, "cpu")
    for n in args.sources:
        with tempfile.TemporaryDirectory() as tmp:
            truth = write_bursts(Path(tmp), n, size=(args.size, args.size * 3 // 4))
            files = sorted(Path(tmp).glob("*.jpg"))
            items, shots, _ = _score_shots(engine, files, None, False, None)
        row = {str(p): k for k, p in enumerate(shots.paths)}
        order = [row[str(r.path)] for r in items]
        source = np.array([truth[p.name] for p in shots.paths])
        print(f"{n} sources × 5 variants ({len(files)} photos, {args.size} px wide):")
        for t in (0.76, 0.78, 0.80, SIMILARITY, 0.84, 0.86, 0.88, 0.90):
            mark = " (default)" if t == SIMILARITY else ""
            print(f"  similarity {t:.2f}{mark}: {measure(cluster(order, shots, t), source)}")


if __name__ == "__main__":
    main()
