"""Batch scoring and featurizing on Ray Data: the one module of imagion that imports Ray
(`pip install 'imagion[ray]'`).

`rank_on_ray` lists the files here, then Ray Data reads and decodes them in an actor pool that
loads the model once per actor (ONNX Runtime on CPU actors, PyTorch on GPU actors) and writes a
Parquet table: path, score, raw, error (and, when asked, the pooled features and the offline
labels). An unreadable file is a row with its reason, not a failed job; a failed task is retried
by Ray (its output is only kept once a task succeeds, so a retry adds no duplicate rows); the
table is written into a temporary folder and renamed into place at the end, so an interrupted run
leaves no table that looks complete. `--top K` is a distributed sort on the written table.

`features_on_ray` computes a frozen backbone's features of a catalog's images in the same way,
into the feature cache that `train` and `eval` read (a shared folder on a cluster)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imagion.errors import ImagionError, InputError
from imagion.images import find_images, load_square
from imagion.settings import cpu_threads

MAX_CPUS_PER_ACTOR = 8  # an actor decodes and infers with up to this many threads (cpu_threads)
ROWS_PER_BLOCK = 256
MAX_PROBLEMS_SHOWN = 20
FAIL_ONCE = "IMAGION_RAY_FAIL_ONCE"  # tests: a marker file; the first actor call that finds it
# missing creates it and kills its worker process, as a node failure would


@dataclass
class BatchRankResult:
    """What a Ray run did: where the table is, how many rows scored and failed, the best K."""

    table: Path | None
    scored: int
    failed: int
    top: list[dict[str, Any]] = field(default_factory=list)  # path, score, raw: best first
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


def _connect(address: str | None) -> Any:
    """Ray on this machine (started here) or the cluster at `address`."""
    ray = require_ray()
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        try:
            ray.init(address=address, **kwargs) if address else ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ImagionError(
                f"`address` {address}: cannot join the Ray cluster ({exc})."
            ) from None
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ray


def _pool(ray: Any) -> tuple[int, float]:
    """(actors, CPUs per actor): one actor per node, using the node's cores (up to 8) for its
    decoding threads and ONNX Runtime's, as the in-process path does: on 2 cores one actor with
    both is 25% faster than two actors of one core each (oversubscribed threads)."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    per_node = min((n["Resources"]["CPU"] for n in nodes), default=1.0)
    cpus = min(per_node, MAX_CPUS_PER_ACTOR)
    total = sum(n["Resources"]["CPU"] for n in nodes) or 1.0
    return max(1, int(total // cpus)), float(cpus)


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


class _Scorer:
    """A Ray actor: the engine loaded once, then batches of paths → scores (and features)."""

    def __init__(self, model: str | None, device: str, features: bool, labels: bool) -> None:
        from imagion.inference.engine import open_engine

        self.engine = open_engine(model, device)
        self.features = features
        self.labels = labels and self.engine.labeler is not None
        self.pool = ThreadPoolExecutor(cpu_threads())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        _maybe_fail_once()
        engine = self.engine
        paths = [str(p) for p in batch["path"]]
        size = engine.preprocess.size
        decoded = list(self.pool.map(lambda p: _try_load(p, size), paths))
        ok = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
        raw = np.full(len(paths), np.nan)
        feats: np.ndarray | None = None
        want = self.features or self.labels
        for s in range(0, len(ok), engine.batch_size):
            chunk = ok[s : s + engine.batch_size]
            r, f = engine.forward(np.stack([decoded[i] for i in chunk]), want)
            raw[chunk] = np.asarray(r, dtype=np.float64).reshape(-1)
            if f is not None:
                if feats is None:
                    feats = np.zeros((len(paths), f.shape[1]), dtype=np.float32)
                feats[chunk] = f
        score = np.full(len(paths), np.nan)
        if ok:
            score[ok] = engine.calibration.score(raw[ok])
        out: dict[str, Any] = {
            "path": np.array(paths, dtype=object),
            "score": score,
            "raw": raw,
            "error": np.array([d if isinstance(d, str) else None for d in decoded], dtype=object),
        }
        if self.features:
            out["features"] = list(feats) if feats is not None else [None] * len(paths)
        if self.labels:
            out["labels"] = np.array(self._labels(feats, ok, len(paths)), dtype=object)
        return out

    def _labels(self, feats: np.ndarray | None, ok: list[int], n: int) -> list[str | None]:
        from imagion.labels.providers import SEEN_THRESHOLD

        names: list[str | None] = [None] * n
        if feats is None or self.engine.labeler is None:
            return names
        for i, lab in zip(ok, self.engine.labeler.from_features(feats[ok]), strict=True):
            names[i] = ", ".join(name for name, p in lab if p >= SEEN_THRESHOLD)
        return names


def _check_table(out: Path) -> None:
    """Checked before any work: a .parquet path whose folder exists and is writable."""
    if out.suffix.lower() != ".parquet":
        raise InputError(f"`out` {out}: name the table FILE.parquet (a Parquet dataset folder).")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InputError(f"`out` {out}: folder {parent} does not exist or cannot be written.")
    if out.exists() and not out.is_dir():
        raise InputError(f"`out` {out}: a file is in the way; choose another name.")


def _publish(tmp: Path, out: Path) -> None:
    """The finished table replaces any older one in one rename (the old one is removed after)."""
    old = None
    if out.exists():
        old = out.with_name(f"{out.name}.imagion-old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _tally(table: Path) -> tuple[int, int, list[str]]:
    """(rows, failed rows, the first reasons) of a written table, read here with pyarrow from
    the Parquet metadata and the `error` column alone: no second pass of Ray over the data."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    data = pads.dataset(str(table), format="parquet")
    rows = data.count_rows()
    failing = data.filter(pc.field("error").is_valid())
    failed = failing.count_rows()
    shown = failing.head(MAX_PROBLEMS_SHOWN, columns=["error"]).column("error").to_pylist()
    return rows, failed, [str(e) for e in shown]


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
) -> BatchRankResult:
    """Score every image under `paths` on Ray Data; see the module's docstring."""
    if out is None and top is None:
        raise ImagionError("with the Ray engine, give `out` (a .parquet table) and/or `top` K.")
    if out is not None:
        _check_table(out)
    files, problems = find_images(list(paths), recursive=recursive)
    if not files:
        raise ImagionError("no image files found in " + ", ".join(map(str, paths)))
    t0 = time.perf_counter()
    ray = _connect(address)
    blocks = max(1, len(files) // ROWS_PER_BLOCK)
    ds = ray.data.from_items([{"path": str(p)} for p in files], override_num_blocks=blocks)
    actors, cpus = _pool(ray)
    scored = ds.map_batches(
        _Scorer,
        fn_constructor_kwargs={
            "model": None if model is None else str(Path(model).resolve()),
            "device": device,
            "features": features,
            "labels": labels,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=cpus,
        num_gpus=1 if device == "cuda" else 0,
    )  # Ray Data restarts a dead actor and retries its task (its defaults for actor pools)
    if out is not None:
        tmp = out.with_name(f"{out.name}.imagion-tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            scored.write_parquet(str(tmp.resolve()))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _publish(tmp, out)
        rows, failed, shown = _tally(out)
        table = ray.data.read_parquet(str(out.resolve())) if top else None
    else:
        table = scored.select_columns(["path", "score", "raw", "error"]).materialize()
        rows, failed, shown = _tally_dataset(table)
    result = BatchRankResult(
        table=out, scored=rows - failed, failed=failed, problems=problems + shown
    )
    if top and table is not None:
        from ray.data.expressions import col

        best = table.filter(expr=col("error").is_null()).sort("score", descending=True).limit(top)
        result.top = [
            {"path": r["path"], "score": float(r["score"]), "raw": float(r["raw"])}
            for r in best.take_all()
        ]
    result.seconds = time.perf_counter() - t0
    return result


class _Featurizer:
    """A Ray actor: a frozen backbone built once, then batches of (path, sha) → cached features."""

    def __init__(self, arch: str, config: dict[str, Any], cache_dir: str, device: str) -> None:
        from imagion.models.registry import build_model
        from imagion.settings import pick_device

        self.model = build_model(arch, **config).eval()
        self.cache_dir = Path(cache_dir)
        self.device = pick_device(device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from imagion.models.caches import frozen_features

        _maybe_fail_once()
        paths = [str(p) for p in batch["path"]]
        shas = [str(s) for s in batch["sha"]]
        feats = frozen_features(self.model, paths, shas, self.cache_dir, self.device)
        reasons = iter(feats.problems)
        return {
            "sha": np.array(shas, dtype=object),
            "error": np.array(
                [None if ok else next(reasons, "failed") for ok in feats.ok], dtype=object
            ),
        }


def features_on_ray(
    arch: str,
    config: dict[str, Any],
    paths: list[str],
    shas: list[str],
    cache_dir: Path,
    device: str = "auto",
    address: str | None = None,
) -> tuple[int, list[str]]:
    """A frozen backbone's features of these images, computed by a Ray actor pool into the
    feature cache under `cache_dir` (which every node must see: a shared folder on a cluster);
    returns (images done, problems)."""
    ray = _connect(address)
    rows = [{"path": p, "sha": s} for p, s in zip(paths, shas, strict=True)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // ROWS_PER_BLOCK))
    actors, cpus = _pool(ray)
    done = ds.map_batches(
        _Featurizer,
        fn_constructor_kwargs={
            "arch": arch,
            "config": config,
            "cache_dir": str(cache_dir.resolve()),
            "device": device,
        },
        batch_size=64,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=cpus,
        num_gpus=1 if device == "cuda" else 0,
    ).materialize()
    from ray.data.expressions import col

    failed = done.filter(expr=col("error").is_not_null())
    problems = [str(r["error"]) for r in failed.take(MAX_PROBLEMS_SHOWN)]
    return done.count() - failed.count(), problems
