"""The index of the ranking pass: what one pass computes for a photo (raw output, pooled features
as float16, perceptual hash, mean colour, capture time), kept in a local SQLite file so that an
unchanged photo is never decoded again and a changed one always is.

A row is keyed by the model's identity and the photo's absolute path, and used only while the
file's size and modification time (ns) are the ones stored; another model (or the same file
changed on disk) never reads another's rows. The score, its range and the labels are not stored:
they follow from the raw output and the features with the engine's calibration and labeler.

Safe like the catalog: WAL (concurrent runs read while one writes, a busy writer waits), an
`application_id`, rows committed per batch of photos (a run killed outright keeps every batch it
committed), and a store that fails (a full disk, a read-only folder) only costs the index: the
run goes on, says so once, and at worst computes again. An index that is not one (a damaged or
foreign file) is said once, moved aside and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagion.catalog.store import PHOTO_INDEX_ID
from imagion.errors import InputError
from imagion.images import capture_time
from imagion.inference.decode import run_files
from imagion.inference.engine import Engine
from imagion.inference.highlights import THUMB_BYTES, no_thumbnails
from imagion.inference.near_copies import Pairing, beside_near_copies, pairing
from imagion.inference.quality import MEASURES_VERSION, STORED_COLUMNS, Meter, Quality, from_row
from imagion.progress import Progress
from imagion.settings import default_cache_dir

log = logging.getLogger("imagion")

APPLICATION_ID = PHOTO_INDEX_ID  # "imix" (the catalog knows it, to say what it is)
SCHEMA_VERSION = 2  # 2: each photo's quality measures
BATCH = 256  # photos decoded and scored per committed batch
INDEX_FILE = "photo-index.sqlite"
_LOOKUP = 500  # paths per SELECT


def fingerprints(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Difference hashes (9×8 grey cells, one bit per horizontal step) and mean colours of a
    uint8 batch N×S×S×3, from every 5th pixel of a 224-px input (each cell still averages
    dozens), every pixel of a small one."""
    step = max(1, min(batch.shape[1:3]) // 40)
    small = batch[:, ::step, ::step].astype(np.float32)
    n, h, w, _ = small.shape
    grey = small @ np.array([0.299, 0.587, 0.114], np.float32)
    rows, cols = np.linspace(0, h, 9).astype(int), np.linspace(0, w, 10).astype(int)
    cells = np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=1), cols[:-1], axis=2)
    cells /= np.maximum(np.outer(np.diff(rows), np.diff(cols)), 1)
    bits = (cells[:, :, 1:] > cells[:, :, :-1]).reshape(n, 64).astype(np.uint64)
    hashes = (bits << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return hashes, small.reshape(n, -1, 3).mean(axis=1)


def _key(path: str) -> str:
    """A path as the index keeps it: text SQLite takes (bytes of a name that is not UTF-8 are
    written `\\xe9`; the size and modification time still guard each row)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def default_index_path() -> Path:
    """The index under imagion's cache folder ($IMAGION_CACHE, else ~/.cache/imagion)."""
    return default_cache_dir() / INDEX_FILE


def model_identity(engine: Engine) -> str:
    """Which model computed a row: the architecture, the engine, the input size, the model
    file (resolved path, size, modification time) and the version of the quality measures (rows
    measured another way are computed again)."""
    path = Path(engine.path).resolve()
    try:
        st = path.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "?"
    text = f"{engine.arch}|{type(engine).__name__}|{engine.preprocess.size}|{path}|{stamp}"
    text += f"|quality v{MEASURES_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Pass:
    """What one pass gives for each photo that worked, row k for `paths[k]`."""

    paths: list[Path]
    raw: np.ndarray  # N float64
    features: np.ndarray | None  # N×F float32 (as the engine gives them), None: no features
    hashes: np.ndarray  # N uint64
    colours: np.ndarray  # N×3
    times: list[float | None]
    quality: np.ndarray  # N×STORED_COLUMNS float32: the measures of inference/quality.py
    thumbs: np.ndarray  # N×THUMB_BYTES uint8: the block thumbnails of inference/highlights.py
    problems: list[str] = field(default_factory=list)
    from_index: int = 0  # photos read from the index, not decoded
    found: Pairing | None = None  # the candidate pairs, once asked for

    def pairing(self) -> Pairing:
        """The photos' candidate pairs in grouping's order (found once, for the near-copy flag
        and for grouping)."""
        if self.found is None:
            self.found = pairing(
                self.features, self.raw, self.paths, self.hashes, self.colours, self.times
            )
        return self.found

    def qualities(self) -> list[Quality]:
        """Each photo's quality, flagged beside its near-copies (inference/near_copies.py: the
        candidate pairs are found only where a photo may have lost highlights)."""
        rows = [from_row(row) for row in self.quality]
        return beside_near_copies(rows, self.thumbs, self.pairing, self.paths)


class PhotoIndex:
    """One SQLite index file. Every failure of the store is logged once and turns the index off
    for this run; none reaches the caller."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_index_path()
        self.db: sqlite3.Connection | None = None
        self.said = False
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as exc:
            self._rebuild(exc)
        except OSError as exc:
            self._off(exc)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            _check_ours(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # one creator at a time: a second run waits, then sees it
            if _check_ours(db) == 0:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS photos (model TEXT NOT NULL, path TEXT NOT NULL,"
                    " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, raw REAL NOT NULL,"
                    " features BLOB, hash INTEGER NOT NULL, colour BLOB NOT NULL, taken REAL,"
                    " quality BLOB NOT NULL, PRIMARY KEY (model, path)) WITHOUT ROWID"
                )
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
            db.execute(
                "SELECT model, path, size, mtime_ns, raw, features, hash, colour, taken, quality"
                " FROM photos LIMIT 1"
            ).fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild(self, exc: Exception) -> None:
        """A file that is not a usable index: moved aside (nothing is deleted) and a new one."""
        aside = self.path.with_name(f"{self.path.name}.unreadable-{time.strftime('%Y%m%d%H%M%S')}")
        log.warning(
            "the photo index %s could not be read (%s); it was moved to %s and is rebuilt: "
            "this run scores every photo again",
            self.path,
            exc,
            aside.name,
        )
        self.said = True
        try:
            for suffix in ("", "-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    side.replace(Path(f"{aside}{suffix}"))
            self.db = self._open()
        except (OSError, sqlite3.Error) as again:
            self._off(again)

    def _off(self, exc: Exception) -> None:
        if not self.said:
            log.warning(
                "the photo index %s is not used for the rest of this run (%s); nothing is lost, "
                "photos are scored again next time",
                self.path,
                exc,
            )
        self.said = True
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
        self.db = None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def lookup(self, model: str, stamps: dict[str, tuple[int, int]]) -> dict[str, tuple]:
        """The stored rows of the files in `stamps` (absolute path → (size, mtime_ns), taken
        before any decoding) whose size and mtime still match."""
        if self.db is None:
            return {}
        found: dict[str, tuple] = {}
        names = list(stamps)
        try:
            for s in range(0, len(names), _LOOKUP):
                part = names[s : s + _LOOKUP]
                name_of = {_key(n): n for n in part}
                rows = self.db.execute(
                    "SELECT path, size, mtime_ns, raw, features, hash, colour, taken, quality"
                    " FROM photos"
                    f" WHERE model = ? AND path IN ({','.join('?' * len(part))})",
                    [model, *name_of],
                ).fetchall()
                for row in rows:
                    name = name_of.get(row[0])
                    if name is not None and stamps.get(name) == (row[1], row[2]):
                        found[name] = row
        except sqlite3.Error as exc:
            self._off(exc)
            return {}
        return found

    def store(self, model: str, part: Pass, stamps: dict[str, tuple[int, int]]) -> None:
        """Rows for the photos of one batch, in one transaction."""
        if self.db is None or not part.paths:
            return
        rows = []
        for k, p in enumerate(part.paths):
            if str(p) not in stamps:
                continue  # could not be looked at before decoding: not kept
            size, mtime = stamps[str(p)]
            feats = None
            if part.features is not None:
                feats = np.asarray(part.features[k], np.float16).tobytes()
            rows.append(
                (
                    model,
                    _key(str(p)),
                    size,
                    mtime,
                    float(part.raw[k]),
                    feats,
                    int(np.asarray(part.hashes[k], np.uint64).view(np.int64)),
                    np.asarray(part.colours[k], np.float32).tobytes(),
                    part.times[k],
                    _quality_blob(part.quality[k], part.thumbs[k]),
                )
            )
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO photos VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            self._off(exc)


def _quality_blob(row: np.ndarray, thumb: np.ndarray) -> bytes:
    """The `quality` column of a photo: its STORED_COLUMNS measures (float32), then its block
    thumbnail (THUMB_BYTES). The measures' version is part of the model identity, so a row kept
    another way is never read."""
    return np.asarray(row, np.float32).tobytes() + np.asarray(thumb, np.uint8).tobytes()


def _from_quality_blob(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The measures and the thumbnail of a `quality` column (a thumbnail of another length:
    none)."""
    cut = STORED_COLUMNS * 4
    row = np.frombuffer(blob[:cut], np.float32)
    thumb = np.frombuffer(blob[cut:], np.uint8)
    return row, thumb if thumb.size == THUMB_BYTES else no_thumbnails(1)[0]


def _check_ours(db: sqlite3.Connection) -> int:
    """The file's application_id, read with its table count in one statement (one snapshot: a
    run that creates the index meanwhile is seen whole or not at all): 0 for a new, empty file;
    DatabaseError for anything that is not an imagion photo index."""
    app_id, tables = db.execute(
        "SELECT (SELECT application_id FROM pragma_application_id()),"
        " (SELECT count(*) FROM sqlite_master)"
    ).fetchone()
    if app_id != APPLICATION_ID and (app_id != 0 or tables):
        raise sqlite3.DatabaseError(f"not an imagion photo index (application_id {app_id:#x})")
    return int(app_id)


def check_chosen_index(path: Path) -> None:
    """A path given as `index` is used only when it is new (in a folder that exists) or an
    imagion photo index already: a folder, a catalog, another program's file, or a damaged file
    there is refused (InputError), never moved aside or written into. (Only the default index,
    in imagion's own cache folder, is moved aside and rebuilt when it cannot be read.)"""
    if path.is_dir():
        raise InputError(f"`index` {path}: is a folder; name a file (a new one, or an index).")
    if not path.parent.is_dir():
        raise InputError(f"`index` {path}: folder {path.parent} does not exist.")
    if not os.path.lexists(path) or (path.is_file() and path.stat().st_size == 0):
        return
    why = "not a regular file" if not path.is_file() else None
    if why is None:
        try:
            with contextlib.closing(
                sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            ) as db:
                _check_ours(db)
        except sqlite3.Error as exc:
            why = str(exc)
    if why is not None:
        raise InputError(
            f"`index` {path}: not an imagion photo index ({why}); imagion leaves it untouched: "
            "name a new file, or leave `index` out for the default one."
        )


@contextlib.contextmanager
def opened_index(index: str | os.PathLike | bool | None) -> Iterator[PhotoIndex | None]:
    """`open_index`, closed after the block."""
    store = open_index(index)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def open_index(index: str | os.PathLike | bool | None) -> PhotoIndex | None:
    """`index`: a path (new, or an index already: see check_chosen_index), True/None for the
    default file, False for none."""
    if index is False:
        return None
    if index is True or index is None:
        return PhotoIndex(None)
    check_chosen_index(Path(index))
    return PhotoIndex(index)


def scored_pass(
    engine: Engine,
    files: list[Path],
    batch_size: int | None,
    progress: Progress | None,
    index: PhotoIndex | None,
) -> Pass:
    """One pass over `files`: rows from the index where the file is unchanged, the others
    decoded and scored (and stored, batch by batch). Paths come back absolute only where they
    were; the order is the order of `files` (those that worked)."""
    model = model_identity(engine) if index is not None else ""
    absolute = {str(p): p.resolve() for p in files} if index is not None else {}
    stamps = _stamps(absolute.values())  # before decoding: a file changed meanwhile is redone
    hits = index.lookup(model, stamps) if index is not None else {}
    todo = [p for p in files if str(absolute.get(str(p), "")) not in hits]
    parts: dict[str, tuple] = {}
    problems: list[str] = []
    size = batch_size or engine.batch_size
    total, base = len(files), len(files) - len(todo)
    if progress is not None and base:
        progress(base, total)
    step = BATCH if index is not None else max(len(todo), 1)
    for s in range(0, len(todo), step):
        chunk = todo[s : s + step]
        part = _decode(engine, chunk, size, _offset(progress, base + s, total))
        problems += part.problems
        if index is not None:
            index.store(model, _absolute(part, absolute), stamps)
        for k, p in enumerate(part.paths):
            feats = None if part.features is None else part.features[k]
            parts[str(p)] = (
                part.raw[k],
                feats,
                part.hashes[k],
                part.colours[k],
                part.times[k],
                part.quality[k],
                part.thumbs[k],
            )
    return _assemble(files, parts, hits, absolute, problems, base)


def _stamps(files: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of each file that can be looked at."""
    stamps = {}
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        stamps[str(p)] = (st.st_size, st.st_mtime_ns)
    return stamps


def _offset(progress: Progress | None, before: int, whole: int) -> Progress | None:
    """`progress` for a part of the work that starts after `before` of `whole` items."""
    if progress is None:
        return None
    report = progress

    def shifted(done: int, total: int, stage: str = "", info: str = "") -> None:
        report(before + done, whole, stage, info)

    return shifted


def _decode(engine: Engine, files: list[Path], batch_size: int, progress: Progress | None) -> Pass:
    hashes: list[np.ndarray] = []
    colours: list[np.ndarray] = []

    def forward(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        h, c = fingerprints(batch)
        hashes.append(h)
        colours.append(c)
        return engine.forward(batch, True)

    meter = Meter(forward)
    done, raw, feats, bad = run_files(
        files, engine.preprocess.size, meter, batch_size, progress, load=meter.load
    )
    if feats is not None:  # as the index keeps them, so a second run gives the same answers
        feats = feats.astype(np.float16).astype(np.float32)
    return Pass(
        done,
        raw,
        feats,
        np.concatenate(hashes) if hashes else np.zeros(0, np.uint64),
        np.concatenate(colours) if colours else np.zeros((0, 3)),
        [capture_time(p) for p in done],
        meter.stored_rows(done),
        meter.thumbs(),
        bad,
    )


def _absolute(part: Pass, absolute: dict[str, Path]) -> Pass:
    return Pass(
        [absolute[str(p)] for p in part.paths],
        part.raw,
        part.features,
        part.hashes,
        part.colours,
        part.times,
        part.quality,
        part.thumbs,
    )


def _assemble(
    files: list[Path],
    parts: dict[str, tuple],
    hits: dict[str, tuple],
    absolute: dict[str, Path],
    problems: list[str],
    from_index: int,
) -> Pass:
    paths, raw, feats, hashes, colours, times, quality, thumbs = [], [], [], [], [], [], [], []
    has_feats = True
    for p in files:
        got = parts.get(str(p))
        if got is None:
            row = hits.get(str(absolute.get(str(p), "")))
            if row is None:
                continue
            f = None if row[4] is None else np.frombuffer(row[4], np.float16).astype(np.float32)
            got = (
                row[3],
                f,
                np.uint64(np.int64(row[5]).view(np.uint64)),
                np.frombuffer(row[6], np.float32),
                row[7],
                *_from_quality_blob(row[8]),
            )
        paths.append(p)
        raw.append(got[0])
        feats.append(got[1])
        has_feats &= got[1] is not None
        hashes.append(got[2])
        colours.append(got[3])
        times.append(got[4])
        quality.append(got[5])
        thumbs.append(got[6])
    return Pass(
        paths,
        np.asarray(raw, np.float64),
        np.stack(feats).astype(np.float32) if has_feats and feats else None,
        np.asarray(hashes, np.uint64),
        np.asarray(colours, np.float64).reshape(-1, 3),
        times,
        np.asarray(quality, np.float32).reshape(-1, STORED_COLUMNS),
        np.asarray(thumbs, np.uint8).reshape(-1, THUMB_BYTES),
        problems,
        from_index,
    )
