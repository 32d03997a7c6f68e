"""The verbs on photos (files, not a catalog): rank, rank_on_ray, compare, group and pick. Each
checks its options here, once, before any work, and returns a typed result; the command line and
the server call these."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from imagion._types import PathLike
from imagion.choices import Device, choice
from imagion.errors import OptionError
from imagion.images import as_paths
from imagion.inference.groups import SIMILARITY, ShotsHook, check_similarity, group_images
from imagion.inference.history import K_SIMILAR, history_hook, history_scorer
from imagion.inference.pick import PICK_N, check_n, pick_images
from imagion.inference.rank import check_top as rank_check_top
from imagion.inference.rank import compare_images, rank_images
from imagion.progress import Progress
from imagion.scale.ray_data import rank_on_ray as on_ray

if TYPE_CHECKING:
    from imagion.inference.groups import GroupResult
    from imagion.inference.pick import PickResult
    from imagion.inference.rank import Comparison, RankResult
    from imagion.scale.ray_data import BatchRankResult


RAY_BATCH = 64  # images per Ray Data batch unless told


def _device(device: str) -> str:
    return str(choice(Device, device, "device"))


def _batch_size(batch_size: int | None) -> int | None:
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise OptionError("batch_size", batch_size, "use at least 1 image per forward pass.")
    return batch_size


def _path(path: PathLike | None) -> Path | None:
    return None if path is None else Path(path)


def _paths(paths: PathLike | Sequence[PathLike]) -> list[str]:
    """Files, folders or globs, as text (a glob stays a glob); one str or Path is one path."""
    return [os.fspath(p) for p in as_paths(paths)]


def _index(index: PathLike | bool | None) -> Path | bool | None:
    """The photo index: None the default one, a path, False none (True: the default)."""
    return index if isinstance(index, bool) or index is None else Path(index)


def _hook(history: PathLike | None, account: str | None, similar: int) -> ShotsHook | None:
    """The similar past posts of `account` in the catalog `history`, attached to each photo of
    a grouping pass (None: no history)."""
    return None if history is None else history_hook(Path(history), account, similar)


def check_top(top: int | None) -> int | None:
    """`top` checked (a whole number of 1 or more, or None: all) and returned."""
    rank_check_top(top)
    return top


def rank(
    paths: PathLike | Sequence[PathLike],
    *,
    model: PathLike | None = None,
    recursive: bool = False,
    top: int | None = None,
    device: str = "auto",
    stats: PathLike | None = None,
    suggest: bool = True,
    crops: PathLike | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    index: PathLike | bool | None = None,
    history: PathLike | None = None,
    account: str | None = None,
    similar: int = K_SIMILAR,
) -> RankResult:
    """Score image files (files, folders, globs; `recursive` into subfolders) best first, in this
    process, with `model` (default: the bundled model); `top` keeps the best K. Each item has
    its score, raw output, the calibrated probability of beating the next one, the labels seen
    and a suggestion (`stats`: the label statistics behind it); `crops` writes the crops likely
    to do better there. Unreadable files are in `result.problems`. An unchanged photo's pass
    comes from the photo `index` (None: the default one under the cache folder; a path; False:
    none). With a catalog as `history`, each item also has `similar_posts` (the `similar` most
    similar scored posts of `account`, or of the catalog's only account) and `already_posted`
    (the post it is a near-copy of)."""
    scorer = None if history is None else history_scorer(Path(history), account, similar)
    return rank_images(
        _paths(paths),
        model=_path(model),
        recursive=recursive,
        batch_size=_batch_size(batch_size),
        device=_device(device),
        progress=progress,
        suggest=suggest,
        stats=None if stats is None else Path(stats),
        crops=None if crops is None else Path(crops),
        top=check_top(top),
        index=_index(index),
        scorer=scorer,
    )


def rank_on_ray(
    paths: PathLike | Sequence[PathLike],
    *,
    out: PathLike | None = None,
    top: int | None = None,
    model: PathLike | None = None,
    recursive: bool = False,
    address: str | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    features: bool = False,
    labels: bool = False,
    progress: Progress | None = None,
) -> BatchRankResult:
    """Score image files on Ray Data (`pip install -e '.[ray]'`), on this machine or the
    cluster at `address`, writing the Parquet table `out` (path, score, raw, error; `features`
    and `labels` add columns); returns the counts, the first problems and the best `top`."""
    return on_ray(
        list(_paths(paths)),
        model=_path(model),
        recursive=recursive,
        out=None if out is None else Path(out),
        top=check_top(top),
        address=address,
        device=_device(device),
        batch_size=_batch_size(batch_size) or RAY_BATCH,
        features=features,
        labels=labels,
        progress=progress,
    )


def compare(
    a: PathLike,
    b: PathLike,
    *,
    model: PathLike | None = None,
    device: str = "auto",
    stats: PathLike | None = None,
    index: PathLike | bool | None = None,
    history: PathLike | None = None,
    account: str | None = None,
    similar: int = K_SIMILAR,
) -> Comparison:
    """Which of two image files is likelier to do better: both scores and P(`a` beats `b`)
    (`index`, `history`, `account` and `similar` as in `rank`)."""
    scorer = None if history is None else history_scorer(Path(history), account, similar)
    return compare_images(
        Path(a),
        Path(b),
        model=_path(model),
        device=_device(device),
        stats=_path(stats),
        index=_index(index),
        scorer=scorer,
    )


def group(
    paths: PathLike | Sequence[PathLike],
    *,
    similarity: float = SIMILARITY,
    model: PathLike | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    suggest: bool = True,
    stats: PathLike | None = None,
    index: PathLike | bool | None = None,
    history: PathLike | None = None,
    account: str | None = None,
    similar: int = K_SIMILAR,
) -> GroupResult:
    """The images under `paths` ranked and grouped into near-duplicates (cosine `similarity` of
    the model's features), each group best first; unreadable files are in `result.problems`."""
    return group_images(
        _paths(paths),
        similarity=check_similarity(similarity),
        model=_path(model),
        recursive=recursive,
        batch_size=_batch_size(batch_size),
        device=_device(device),
        progress=progress,
        suggest=suggest,
        stats=_path(stats),
        index=_index(index),
        with_shots=_hook(history, account, similar),
    )


def pick(
    paths: PathLike | Sequence[PathLike],
    n: int = PICK_N,
    *,
    similarity: float = SIMILARITY,
    model: PathLike | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    stats: PathLike | None = None,
    index: PathLike | bool | None = None,
    history: PathLike | None = None,
    account: str | None = None,
    similar: int = K_SIMILAR,
) -> PickResult:
    """The `n` photos to post from a shoot: the best of the `n` best groups of near-duplicates
    (`similarity` as in `group`), each with P(it beats its group's runner-up)."""
    return pick_images(
        _paths(paths),
        check_n(n),
        similarity=check_similarity(similarity),
        model=_path(model),
        recursive=recursive,
        batch_size=_batch_size(batch_size),
        device=_device(device),
        progress=progress,
        stats=_path(stats),
        index=_index(index),
        with_shots=_hook(history, account, similar),
    )
