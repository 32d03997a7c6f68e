"""`rank` with ONNX Runtime's waiting threads spinning (its default) and sleeping (imagion's
setting, `settings.onnx_options`), interleaved in one process: wall and CPU time of each.

The photos: every ig-celeb12 photo (120, about 1080 px) and its 5 generated copies as in
bench/quality_flags.py (720 photos), so that a run takes seconds, not a fraction of one.

Usage: python bench/onnx_spinning.py [--datasets /work/shared/datasets] [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _datasets import add_datasets_option  # noqa: E402 (bench/, the script's folder)

sys.path.insert(0, str(ROOT / "bench"))

from quality_flags import sources, write_sets  # noqa: E402

import imagion.inference.engine as engine  # noqa: E402
from imagion import settings  # noqa: E402
from imagion.inference.rank import rank_images  # noqa: E402


def spinning(ort: Any) -> Any:
    """ONNX Runtime's default: the same threads, spinning while they wait."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings.cpu_threads()
    return opts


def main() -> None:
    ap = argparse.ArgumentParser()
    add_datasets_option(ap)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sleeping = settings.onnx_options
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_sets(sources(args.datasets, 12, 10), folder)
        rank_images([folder], suggest=False, index=False)  # warm: files cached, export made
        took: dict[str, list[tuple[float, float]]] = {"spinning": [], "sleeping": []}
        for _ in range(args.runs):
            for kind, options in (("spinning", spinning), ("sleeping", sleeping)):
                engine.onnx_options = options  # type: ignore[attr-defined]
                t, c = time.perf_counter(), time.process_time()
                n = len(rank_images([folder], suggest=False, index=False))
                took[kind].append((time.perf_counter() - t, time.process_time() - c))
        engine.onnx_options = sleeping  # type: ignore[attr-defined]
    for kind, runs in took.items():
        wall, cpu = np.asarray(runs).min(axis=0)
        mid = np.median(np.asarray(runs), axis=0)
        print(
            f"{kind:>8}: rank of {n} photos {wall:.2f} s wall, {cpu:.2f} s CPU (fastest of "
            f"{args.runs}; median {mid[0]:.2f} s, {mid[1]:.2f} s)"
        )
    (sw, sc), (lw, lc) = (np.asarray(took[k]).min(axis=0) for k in ("spinning", "sleeping"))
    print(f"sleeping threads: {sw / lw:.2f}× the speed, {1 - lc / sc:.0%} less CPU")


if __name__ == "__main__":
    main()
