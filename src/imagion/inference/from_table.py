"""Groups and picks from a table `rank --engine ray --features` wrote (`--from-table`): a million
photos scored on a cluster are grouped and picked here without a second pass.

The table has each photo's path, raw output and pooled features (and an error where a photo
failed); the scores and win probabilities come from the model's calibration (`model`: the one
that wrote the table). It has no perceptual hash or capture time, so only the features group
(re-saved copies have near-identical features and still meet in one group)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagion.errors import ImagionError, InputError
from imagion.inference.engine import open_engine
from imagion.inference.groups import SIMILARITY, GroupResult, Shots, check_similarity, grouped
from imagion.inference.highlights import THUMB_BYTES, no_thumbnails
from imagion.inference.near_copies import Pairing, beside_near_copies, pairing
from imagion.inference.neighbours import reporting
from imagion.inference.quality import STORED_COLUMNS, Quality, from_row
from imagion.inference.rank import ranked
from imagion.progress import Progress


@dataclass
class TableRows:
    """The scored rows of a Ray table: what grouping needs of each (hash, colour and time, and
    quality, when the table has them: tables of earlier versions have not; `thumbs` the block
    thumbnails, rows without one `highlights.no_thumbnails`)."""

    paths: list[Path]
    raw: np.ndarray
    features: np.ndarray
    problems: list[str]
    qualities: list[Quality] | None = None
    hashes: np.ndarray | None = None
    colours: np.ndarray | None = None
    times: list[float | None] | None = None
    thumbs: np.ndarray | None = None
    found: Pairing | None = None  # the candidate pairs, once asked for

    def columns(self) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
        """The hashes, mean colours and capture times grouping needs. A table without hashes
        and colours gives each row its own hash and no colour: never a re-saved copy."""
        n = len(self.paths)
        hashes = self.hashes if self.hashes is not None else np.arange(n, dtype=np.uint64)
        colours = self.colours if self.colours is not None else np.full((n, 3), np.nan)
        times: list[float | None] = self.times if self.times is not None else [None] * n
        return hashes, colours, times

    def pairing(self) -> Pairing:
        """The rows' candidate pairs in grouping's order (found once: near copies, grouping)."""
        if self.found is None:
            self.found = pairing(self.features, self.raw, self.paths, *self.columns())
        return self.found

    def shots(self) -> Shots:
        """What grouping needs of the rows, with their candidate pairs."""
        pairs = self.pairing()
        return Shots(self.paths, pairs.unit, *self.columns(), pairs)


def read_table(table: Path) -> TableRows:
    """The scored rows of a Ray table, and its failed rows' errors."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pyarrow comes with the ray extra
        raise ImagionError(
            "reading a Parquet table needs pyarrow: pip install -e '.[ray]' in imagion's clone"
        ) from exc
    if not Path(table).exists():
        raise InputError(f"{table}: no such table (a Ray ranking with `features` writes one).")
    try:
        data = pq.read_table(str(table))
    except Exception as exc:  # pyarrow's errors have no common base
        raise InputError(f"{table}: not a readable Parquet table ({exc}).") from exc
    missing = {"path", "raw", "error", "features"} - set(data.column_names)
    if missing:
        raise InputError(
            f"{table}: no {', '.join(sorted(missing))} column; write the table with a Ray "
            "ranking with `features`."
        )
    paths = data.column("path").to_pylist()
    errors = data.column("error").to_pylist()
    raws = data.column("raw").to_numpy(zero_copy_only=False)
    feats = data.column("features").to_pylist()
    ok = [k for k, e in enumerate(errors) if e is None and feats[k] is not None]
    problems = [str(e) for e in errors if e is not None]
    if not ok:
        raise ImagionError(f"{table}: no photo in it was scored.")
    got = TableRows(
        [Path(paths[k]) for k in ok],
        np.asarray(raws[ok], np.float64),
        np.asarray([feats[k] for k in ok], np.float32),
        problems,
    )
    names = set(data.column_names)
    if "quality" in names:
        rows = data.column("quality").to_pylist()
        if all(rows[k] is not None and len(rows[k]) == STORED_COLUMNS for k in ok):
            got.qualities = [from_row(np.asarray(rows[k], np.float32)) for k in ok]
    if {"hash", "colour", "taken"} <= names:
        hashes, colours = data.column("hash").to_pylist(), data.column("colour").to_pylist()
        taken = data.column("taken").to_pylist()
        if all(hashes[k] is not None and colours[k] is not None for k in ok):
            got.hashes = np.asarray([hashes[k] for k in ok], np.int64).view(np.uint64)
            got.colours = np.asarray([colours[k] for k in ok], np.float64).reshape(-1, 3)
            got.times = [None if taken[k] is None else float(taken[k]) for k in ok]
    if "thumb" in names:
        cells = data.column("thumb").to_pylist()
        got.thumbs = no_thumbnails(len(ok))
        for row, k in enumerate(ok):
            if isinstance(cells[k], bytes) and len(cells[k]) == THUMB_BYTES:
                got.thumbs[row] = np.frombuffer(cells[k], np.uint8)
    if got.qualities is not None and got.hashes is not None and got.colours is not None:
        got.qualities = beside_near_copies(got.qualities, got.thumbs, got.pairing, got.paths)
    return got


def group_table(
    table: str | Path,
    *,
    similarity: float = SIMILARITY,
    model: str | Path | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    suggest: bool = True,
    stats: Path | None = None,
) -> GroupResult:
    """Near-duplicate groups of the photos of a `rank --engine ray --features` table, each best
    first (`model`: the model that wrote it, default the bundled one)."""
    check_similarity(similarity)
    got = read_table(Path(table))
    engine = open_engine(model, device, stats=stats)
    feats = got.features
    items = ranked(engine, got.paths, got.raw, feats if suggest else None, got.qualities)
    with reporting(progress):
        return grouped(engine, items, got.shots(), similarity, got.problems)
