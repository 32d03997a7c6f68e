"""One reader and one writer of the cache's entries (decoded images, frozen features), kept
light (NumPy only) so that the offline labeller and training share them.

An entry is used only when it is whole and current: a missing, empty or truncated file (NumPy
raises EOFError on those), one of another shape, one holding NaN or infinity, or one older than
the image it was computed from (the image was replaced since) is computed again. A cache that
cannot be written (read-only, disk full) costs one warning naming the folder; the work goes on
in memory."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from imagion.files import atomic_path
from imagion.images import zip_member

log = logging.getLogger(__name__)
_unwritable: set[Path] = set()  # cache folders already warned about in this process


def _mtime_ns(ref: str | Path) -> int | None:
    inside = zip_member(ref)
    try:
        return os.stat(inside[0] if inside else ref).st_mtime_ns
    except OSError:
        return None


def read_entry(
    path: Path, shape: tuple[int, ...], source: str | Path | None = None
) -> np.ndarray | None:
    """The cached array at `path`, or None when it must be computed (again)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        return None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return None
    if source is not None:
        image_time = _mtime_ns(source)
        try:
            if image_time is not None and image_time > path.stat().st_mtime_ns:
                return None  # the image changed after this entry was computed
        except OSError:
            return None
    return arr


def save_entry(path: Path, array: np.ndarray) -> bool:
    """Write an entry atomically; False (and one warning per folder) when the cache cannot
    take it: the result is still used, only not kept."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array))
        return True
    except OSError as exc:
        folder = path.parent
        if folder not in _unwritable:
            _unwritable.add(folder)
            log.warning(
                "cache folder %s cannot be written (%s); this run computes in memory and "
                "keeps nothing (set IMAGION_CACHE to a writable folder with free space).",
                folder,
                exc.strerror or exc,
            )
        return False
