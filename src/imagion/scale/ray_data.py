"""Batch scoring and featurizing on Ray Data: the one module of imagion that imports Ray
(`pip install -e '.[ray]'` in the clone).

`rank_on_ray` lists the files here, then Ray Data reads and decodes them in an actor pool that
loads the model once per actor (ONNX Runtime on CPU actors, PyTorch on GPU actors) and writes a
Parquet table: path, score, score_low, score_high (its 80% range), raw, error (and, when asked, the pooled features and the offline
labels). An unreadable file is a row with its reason, not a failed job, in whichever block it
falls: every block has the same columns of the same types (`tables.schema`). A failed task is
retried by Ray (its output is only kept once a task succeeds, so a retry adds no duplicate rows).
The table is written into a temporary folder this run creates and renamed into place at the end
(`tables.write_table`), so an interrupted run leaves no table that looks complete; anything
already at `out` is refused before any work, never replaced. `--top K` is a distributed sort on
the written table.

Ray's own console lines (notices, warnings, its progress bars) are kept off the terminal; the
rows done are counted by a small actor and reported through imagion's `progress` callback.

`features_on_ray` computes a frozen backbone's features of a catalog's images in the same way,
into the feature cache that `train` and `eval` read (a shared folder on a cluster)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from imagion.errors import ImagionError, InputError, OptionError, ServiceError
from imagion.images import capture_time, find_images, load_square
from imagion.inference.engine import open_engine
from imagion.inference.photo_index import fingerprints
from imagion.inference.quality import Meter
from imagion.models.imagenet import SEEN_THRESHOLD
from imagion.models.registry import build_model
from imagion.progress import Progress
from imagion.scale.tables import MAX_PROBLEMS_SHOWN, check_table, schema, tally, write_table
from imagion.settings import cpu_threads, pick_device, wants_gpu

MAX_CPUS_PER_ACTOR = 8  # an actor decodes and infers with up to this many threads (cpu_threads)
ROWS_PER_BLOCK = 256
POLL_S = 0.5  # how often the rows done are read for `progress`
FAIL_ONCE = "IMAGION_RAY_FAIL_ONCE"  # tests: a marker file; the first actor call that finds it
# missing creates it and kills its worker process, as a node failure would


class TopRow(TypedDict):
    """One of the best rows of a Ray run: the file, its 0–10 score, the model's raw output."""

    path: str
    score: float
    raw: float


@dataclass
class BatchRankResult:
    """What a Ray run did: where the table is, how many rows scored and failed, the best K."""

    table: Path | None
    scored: int
    failed: int
    top: list[TopRow] = field(default_factory=list)  # best first
    problems: list[str] = field(default_factory=list)  # the first failures: "path: reason"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": str(self.table) if self.table else None,
            "scored": self.scored,
            "failed": self.failed,
            "top": self.top,
            "problems": self.problems,
            "seconds": round(self.seconds, 2),
        }


def require_ray() -> Any:
    """The `ray` module; ModuleNotFoundError('ray') without the extra (the CLI names it)."""
    import ray
    import ray.data

    return ray


def _quiet() -> None:
    """Ray Data's console handler shows errors only (its log file keeps the rest): no "progress
    bars disabled" (Ray's own logger is set to errors by ray.init: no token-auth notice)."""
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.ERROR)


def _connect(address: str | None) -> Any:
    """Ray on this machine (started here) or the cluster at `address`."""
    ray = require_ray()
    _quiet()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,  # (configure_logging=False would leave it no handler)
        }
        try:
            ray.init(address=address, **kwargs) if address else ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            if address:
                raise OptionError(
                    "address", address, f"cannot join the Ray cluster ({exc})."
                ) from None
            raise ServiceError(f"cannot start Ray on this machine ({exc}).") from None
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ray


def _uses_fd2(stream: Any) -> bool:
    try:
        return bool(stream.fileno() == 2)
    except (AttributeError, OSError, ValueError):  # a test runner's buffer, a closed stream
        return False


@contextmanager
def _native_stderr_aside(ray: Any) -> Iterator[None]:
    """While Ray works, what its C++ core writes to this process's file descriptor 2 (a notice
    about actor restarts on every run, at ERROR, which no setting hides without printing one of
    its own) goes to a file in Ray's session logs; Python's `sys.stderr` (notes, the progress
    bar, errors) keeps writing where it did, through a copy of the descriptor."""
    node = getattr(ray._private.worker, "_global_node", None)
    log = Path(node.get_logs_dir_path()) / "imagion-driver.err" if node else Path(os.devnull)
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to set aside
        yield
        return
    try:
        target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        target = os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, 2)
    os.close(target)
    before = sys.stderr
    if _uses_fd2(before):  # a new stream on a copy (never closed here: a thread may hold it)
        sys.stderr = open(  # noqa: SIM115
            os.dup(saved), "w", buffering=1, encoding=before.encoding, errors=before.errors
        )
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = before
        os.dup2(saved, 2)
        os.close(saved)


def _pool(ray: Any) -> tuple[int, float]:
    """(actors, CPUs per actor): one actor per node, using the node's cores (up to 8) for its
    decoding threads and ONNX Runtime's, as the in-process path does: on 2 cores one actor with
    both is 25% faster than two actors of one core each (oversubscribed threads)."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    per_node = min((n["Resources"]["CPU"] for n in nodes), default=1.0)
    cpus = min(per_node, MAX_CPUS_PER_ACTOR)
    total = sum(n["Resources"]["CPU"] for n in nodes) or 1.0
    return max(1, int(total // cpus)), float(cpus)


def gpus_per_actor(ray: Any, device: str) -> int:
    """1 when `device` means a GPU on this cluster (cuda, or auto where the cluster has one; the
    rule of `imagion.settings.wants_gpu`), so that Ray shows the actor its GPU; else 0."""
    return 1 if wants_gpu(device, ray.cluster_resources().get("GPU", 0) > 0) else 0


def _maybe_fail_once() -> None:
    marker = os.environ.get(FAIL_ONCE)
    if marker and not Path(marker).exists():
        Path(marker).write_text("killed once\n")
        os._exit(1)


def _try_load(path: str, size: int) -> np.ndarray | str:
    try:
        return load_square(path, size)
    except ImagionError as exc:
        return str(exc)
    except OSError as exc:
        return f"{path}: cannot read ({exc.strerror or exc})."


class _Count:
    """A Ray actor: the rows done so far (each scoring actor adds its batches)."""

    def __init__(self) -> None:
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n

    def get(self) -> int:
        return self.done


@contextmanager
def _counting(ray: Any, total: int, progress: Progress | None, stage: str) -> Iterator[Any]:
    """A row counter for the actors (None without `progress`), read every POLL_S by a helper
    thread that reports `progress(done, total, stage)` (so the callback may run on that thread)
    while this one waits on Ray; the last report, on success, is total of total."""
    if progress is None:
        yield None
        return
    counter = ray.remote(num_cpus=0)(_Count).remote()
    stop = threading.Event()

    def watch() -> None:
        last = -1
        while not stop.wait(POLL_S):
            try:
                done = min(int(ray.get(counter.get.remote(), timeout=2)), total)
            except Exception:  # a slow or lost counter only delays the bar
                continue
            if done != last:
                progress(done, total, stage)
                last = done

    watcher = threading.Thread(target=watch, name="imagion-ray-progress", daemon=True)
    watcher.start()
    try:
        yield counter
    finally:
        stop.set()
        watcher.join()
        ray.kill(counter)
    progress(total, total, stage)


class _Scorer:
    """A Ray actor: the engine loaded once, then batches of paths → scores (and features)."""

    def __init__(
        self, model: str | None, device: str, features: bool, labels: bool, counter: Any = None
    ) -> None:
        self.engine = open_engine(model, device)
        self.features = features
        self.labels = labels and self.engine.labeler is not None
        self.schema = schema(features, self.labels)
        self.counter = counter
        self.pool = ThreadPoolExecutor(cpu_threads())

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        _maybe_fail_once()
        engine = self.engine
        paths = [str(p) for p in batch["path"]]
        size = engine.preprocess.size
        decoded = list(self.pool.map(lambda p: _try_load(p, size), paths))
        ok = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
        raw = np.full(len(paths), np.nan)
        feats: np.ndarray | None = None
        want = self.features or self.labels
        meter = Meter(lambda batch: engine.forward(batch, want))
        for s in range(0, len(ok), engine.batch_size):
            chunk = ok[s : s + engine.batch_size]
            r, f = meter(np.stack([decoded[i] for i in chunk]))
            raw[chunk] = np.asarray(r, dtype=np.float64).reshape(-1)
            if f is not None:
                if feats is None:
                    feats = np.zeros((len(paths), f.shape[1]), dtype=np.float32)
                feats[chunk] = f
        score = np.full(len(paths), np.nan)
        low, high = np.full(len(paths), np.nan), np.full(len(paths), np.nan)
        if ok:
            score[ok] = engine.calibration.score(raw[ok])
            band = engine.calibration.interval(raw[ok])
            if band is not None:  # the 80% range, as rank --json gives it (NaN: no range)
                low[ok], high[ok] = band
        out: dict[str, Any] = {
            "path": paths,
            "score": score,
            "score_low": low,
            "score_high": high,
            "raw": raw,
            "error": [d if isinstance(d, str) else None for d in decoded],
        }
        if self.features:
            done = set(ok)
            out["features"] = [
                feats[i] if feats is not None and i in done else None for i in range(len(paths))
            ]
            measured = dict(zip(ok, meter.stored_rows([Path(paths[i]) for i in ok]), strict=True))
            out["quality"] = [measured.get(i) for i in range(len(paths))]
            thumbs = dict(zip(ok, meter.thumbs(), strict=True))
            out["thumb"] = [thumbs[i].tobytes() if i in thumbs else None for i in range(len(paths))]
            out.update(_grouping_columns(decoded, ok, paths))
        if self.labels:
            out["labels"] = self._labels(feats, ok, len(paths))
        if self.counter is not None:
            self.counter.add.remote(len(paths))
        return pa.Table.from_pydict(out, schema=self.schema)

    def _labels(self, feats: np.ndarray | None, ok: list[int], n: int) -> list[str | None]:
        names: list[str | None] = [None] * n
        if feats is None or self.engine.labeler is None:
            return names
        for i, lab in zip(ok, self.engine.labeler.from_features(feats[ok]), strict=True):
            names[i] = ", ".join(name for name, p in lab if p >= SEEN_THRESHOLD)
        return names


def _grouping_columns(
    decoded: list[np.ndarray | str], ok: list[int], paths: list[str]
) -> dict[str, list[Any]]:
    """What grouping needs beside the features, as `rank`'s own pass computes it: the perceptual
    hash and mean colour of the model input, the EXIF capture time (None where a row failed)."""
    n = len(paths)
    hashes: list[Any] = [None] * n
    colours: list[Any] = [None] * n
    if ok:
        h, c = fingerprints(np.stack([decoded[i] for i in ok]))
        for k, i in enumerate(ok):
            hashes[i] = int(np.asarray(h[k], np.uint64).view(np.int64))
            colours[i] = np.asarray(c[k], np.float32)
    done = set(ok)
    taken = [capture_time(paths[i]) if i in done else None for i in range(n)]
    return {"hash": hashes, "colour": colours, "taken": taken}


def _tally_dataset(table: Any) -> tuple[int, int, list[str]]:
    """The same for a materialized Ray dataset (no table written: `top` only)."""
    from ray.data.expressions import col

    failing = table.filter(expr=col("error").is_not_null())
    failed = failing.count()
    shown = [str(r["error"]) for r in failing.take(MAX_PROBLEMS_SHOWN)] if failed else []
    return table.count(), failed, shown


def rank_on_ray(
    paths: list[str | Path],
    *,
    model: str | Path | None = None,
    recursive: bool = False,
    out: Path | None = None,
    top: int | None = None,
    address: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    features: bool = False,
    labels: bool = False,
    progress: Progress | None = None,
) -> BatchRankResult:
    """Score every image under `paths` on Ray Data; see the module's docstring. `progress` is
    told the stage ("starting Ray", then "scoring" with the rows done, from a helper thread)."""
    if out is None and top is None:
        raise ImagionError("with the Ray engine, give `out` (a .parquet table) and/or `top` K.")
    if out is not None:
        check_table(out)
    files, problems = find_images(list(paths), recursive=recursive)
    if not files:
        raise InputError("no image files found in " + ", ".join(map(str, paths)))
    t0 = time.perf_counter()
    if progress is not None:
        progress(0, len(files), "starting Ray")
    ray = _connect(address)
    blocks = max(1, len(files) // ROWS_PER_BLOCK)
    ds = ray.data.from_items([{"path": str(p)} for p in files], override_num_blocks=blocks)
    actors, cpus = _pool(ray)
    with _native_stderr_aside(ray), _counting(ray, len(files), progress, "scoring") as counter:
        scored = ds.map_batches(
            _Scorer,
            fn_constructor_kwargs={
                "model": None if model is None else str(Path(model).resolve()),
                "device": device,
                "features": features,
                "labels": labels,
                "counter": counter,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=cpus,
            num_gpus=gpus_per_actor(ray, device),
        )  # Ray Data restarts a dead actor and retries its task (its defaults for actor pools)
        if out is not None:
            write_table(scored.write_parquet, out)
        else:
            table = scored.select_columns(
                ["path", "score", "score_low", "score_high", "raw", "error"]
            ).materialize()
    if out is not None:
        rows, failed, shown = tally(out)
        table = ray.data.read_parquet(str(out.resolve())) if top else None
    else:
        rows, failed, shown = _tally_dataset(table)
    result = BatchRankResult(
        table=out, scored=rows - failed, failed=failed, problems=problems + shown
    )
    if top and table is not None:
        with _native_stderr_aside(ray):
            result.top = _best(table, top)
    result.seconds = time.perf_counter() - t0
    return result


def _best(table: Any, top: int) -> list[TopRow]:
    """The best `top` rows that scored, by a distributed sort."""
    from ray.data.expressions import col

    best = table.filter(expr=col("error").is_null()).sort("score", descending=True).limit(top)
    return [
        TopRow(path=str(r["path"]), score=float(r["score"]), raw=float(r["raw"]))
        for r in best.take_all()
    ]


class _Featurizer:
    """A Ray actor: a frozen backbone built once, then batches of (path, sha) → cached features."""

    def __init__(
        self, arch: str, config: dict[str, Any], cache_dir: str, device: str, counter: Any = None
    ) -> None:
        self.model = build_model(arch, **config).eval()
        self.cache_dir = Path(cache_dir)
        self.device = pick_device(device)
        self.counter = counter

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        from imagion.models.caches import frozen_features

        _maybe_fail_once()
        paths = [str(p) for p in batch["path"]]
        shas = [str(s) for s in batch["sha"]]
        feats = frozen_features(self.model, paths, shas, self.cache_dir, self.device)
        reasons = iter(feats.problems)
        if self.counter is not None:
            self.counter.add.remote(len(paths))
        errors = [None if ok else next(reasons, "failed") for ok in feats.ok]
        return pa.table(  # typed, as tables.schema: an error is a string or null in every block
            {"sha": pa.array(shas, pa.string()), "error": pa.array(errors, pa.string())}
        )


def features_on_ray(
    arch: str,
    config: dict[str, Any],
    paths: list[str],
    shas: list[str],
    cache_dir: Path,
    device: str = "auto",
    address: str | None = None,
    progress: Progress | None = None,
) -> tuple[int, list[str]]:
    """A frozen backbone's features of these images, computed by a Ray actor pool into the
    feature cache under `cache_dir` (which every node must see: a shared folder on a cluster);
    returns (images done, problems). `progress` as for `rank_on_ray`."""
    if progress is not None:
        progress(0, len(paths), "starting Ray")
    ray = _connect(address)
    rows = [{"path": p, "sha": s} for p, s in zip(paths, shas, strict=True)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // ROWS_PER_BLOCK))
    actors, cpus = _pool(ray)
    with _native_stderr_aside(ray), _counting(ray, len(rows), progress, "features") as counter:
        done = ds.map_batches(
            _Featurizer,
            fn_constructor_kwargs={
                "arch": arch,
                "config": config,
                "cache_dir": str(cache_dir.resolve()),
                "device": device,
                "counter": counter,
            },
            batch_size=64,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=cpus,
            num_gpus=gpus_per_actor(ray, device),
        ).materialize()
    from ray.data.expressions import col

    failed = done.filter(expr=col("error").is_not_null())
    problems = [str(r["error"]) for r in failed.take(MAX_PROBLEMS_SHOWN)]
    return done.count() - failed.count(), problems
