"""Decode image files in threads while a model runs on the batches already decoded (torch-free)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from imagion.errors import ImagionError
from imagion.images import load_square
from imagion.progress import Progress
from imagion.settings import cpu_threads

# forward(uint8 batch N×S×S×3) → (raw outputs N, pooled features N×F or None)
Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def run_files(
    paths: list[Path],
    size: int,
    forward: Forward,
    batch_size: int = 8,
    progress: Progress | None = None,
    load: Callable[[Path, int], np.ndarray] = load_square,
) -> tuple[list[Path], np.ndarray, np.ndarray | None, list[str]]:
    """Raw outputs (and features) for image files; JPEGs are decoded at reduced size (by `load`,
    in the decoding threads).

    Returns (paths that worked, raw outputs, features or None, problems naming each file that did not).
    """
    done: list[Path] = []
    raws: list[np.ndarray] = []
    feats: list[np.ndarray] = []
    problems: list[str] = []
    pending: deque[tuple[Path, Future]] = deque()
    batch: list[np.ndarray] = []
    batch_paths: list[Path] = []

    def flush() -> None:
        if batch:
            raw, f = forward(np.stack(batch))
            raws.append(np.asarray(raw, dtype=np.float64).reshape(-1))
            if f is not None:
                feats.append(np.asarray(f, dtype=np.float32))
            done.extend(batch_paths)
            batch.clear()
            batch_paths.clear()

    with ThreadPoolExecutor(cpu_threads()) as pool:
        it = iter(paths)
        ahead = max(2 * batch_size, 16)
        finished = 0
        while True:
            while len(pending) < ahead:
                p = next(it, None)
                if p is None:
                    break
                pending.append((p, pool.submit(load, p, size)))
            if not pending:
                break
            p, fut = pending.popleft()
            try:
                batch.append(fut.result())
                batch_paths.append(p)
            except ImagionError as exc:
                problems.append(str(exc))
            finished += 1
            if len(batch) == batch_size:
                flush()
            if progress:
                progress(finished, len(paths))
        flush()
    raw = np.concatenate(raws) if raws else np.array([], dtype=np.float64)
    features = np.concatenate(feats) if feats else None
    return done, raw, features, problems
