"""Grouping that scales (imagion.inference.neighbours): the candidate neighbours give the same
groups as comparing every photo with every group, whatever order the photos come in, with or
without the nearest-neighbour index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagion.inference import neighbours
from imagion.inference.groups import Shots, cluster
from imagion.inference.near_copies import (
    BURST_EASING,
    BURST_SECONDS,
    HASH_BITS,
    HASH_COLOUR,
    SIMILARITY,
)


def scenes(n: int, seed: int = 0, dims: int = 64) -> tuple[Shots, np.ndarray, np.ndarray]:
    """`n` photos of scenes with 1–6 near-copies (some re-saved, some in a burst), their scene
    and a best-first score."""
    rng = np.random.default_rng(seed)
    scene = np.repeat(np.arange(n), rng.integers(1, 7, n))[:n]
    m = scene[-1] + 1
    base = np.abs(rng.standard_normal((m, dims)))
    f = np.maximum(base[scene] * (1 + 0.3 * rng.standard_normal((n, dims))), 0)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    copy = rng.random(n) < 0.3
    hashes[copy] = rng.integers(0, 2**63, m, dtype=np.int64).astype(np.uint64)[scene[copy]]
    colours = rng.uniform(0, 255, (m, 3))[scene]
    when = rng.uniform(0, 1e6, m)[scene] + rng.uniform(0, 1, n)
    times = [float(t) if k % 2 else None for k, t in enumerate(when)]
    shots = Shots(
        [Path(f"{k}.jpg") for k in range(n)], f.astype(np.float32), hashes, colours, times
    )
    return shots, scene, rng.permutation(n).astype(float)


def every_pair(order: list[int], shots: Shots, similarity: float = SIMILARITY) -> list[list[int]]:
    """The grouping rule comparing each photo with every group (the reference)."""
    groups: list[list[int]] = []
    for i in order:
        g = None
        copies = [  # a re-saved copy: the group of the earliest such photo
            (order.index(j), k)
            for k, members in enumerate(groups)
            for j in members
            if bin(int(shots.hashes[i]) ^ int(shots.hashes[j])).count("1") <= HASH_BITS
            and np.abs(shots.colours[i] - shots.colours[j]).max() <= HASH_COLOUR
        ]
        g = min(copies)[1] if copies else None
        if g is None and groups:
            f = shots.features
            assert f is not None
            sim = np.array([f[m].mean(axis=0) @ f[i] for m in groups])
            need = np.full(len(groups), similarity)
            t = shots.times[i]
            if t is not None:
                for k, members in enumerate(groups):
                    ts = [u for j in members if (u := shots.times[j]) is not None]
                    if ts and min(ts) - BURST_SECONDS <= t <= max(ts) + BURST_SECONDS:
                        need[k] -= BURST_EASING
            best = int(np.argmax(sim - need))
            g = best if sim[best] >= need[best] else None
        if g is None:
            groups.append([])
            g = len(groups) - 1
        groups[g].append(i)
    return groups


def as_paths(groups: list[list[int]], shots: Shots) -> list[list[str]]:
    return [[str(shots.paths[i]) for i in g] for g in groups]


def best_first(score: np.ndarray) -> list[int]:
    return sorted(range(len(score)), key=lambda k: -score[k])


def test_candidates_give_the_groups_of_every_pair():
    shots, _, score = scenes(300)
    order = best_first(score)
    assert cluster(order, shots) == every_pair(order, shots)


def test_shuffled_input_gives_the_same_groups():
    shots, _, score = scenes(400, seed=3)
    want = as_paths(cluster(best_first(score), shots), shots)
    perm = np.random.default_rng(9).permutation(len(score))
    moved = Shots(
        [shots.paths[k] for k in perm],
        shots.features[perm],  # type: ignore[index]
        shots.hashes[perm],
        shots.colours[perm],
        [shots.times[k] for k in perm],
    )
    assert as_paths(cluster(best_first(score[perm]), moved), moved) == want


def test_beyond_the_exact_size_the_inverted_search_keeps_the_groups(monkeypatch):
    shots, _, score = scenes(1500, seed=5)
    order = best_first(score)
    exact = cluster(order, shots)
    monkeypatch.setattr(neighbours, "EXACT_UP_TO", 100)
    monkeypatch.setattr(neighbours, "SEARCH_DIMS", 48)  # projected too
    near = cluster(order, shots)
    same = sum(g in exact for g in near)
    assert same >= 0.98 * len(exact), (same, len(exact))


def test_a_model_without_features_groups_resaved_copies_only():
    shots, scene, score = scenes(200, seed=7)
    shots.features = None
    groups = cluster(best_first(score), shots)
    for g in groups:
        assert len(set(scene[g])) == 1
    together = {int(h) for g in groups if len(g) > 1 for h in shots.hashes[g]}
    assert together  # some re-saved copies were found
