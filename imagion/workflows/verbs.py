"""The deck's verbs as Python calls: what `import imagion` offers (lazily) and what the command
line does for each command. Each takes paths and options, opens what it needs, and returns a
typed result; mistakes raise ImagionError (or a subclass) saying what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagion.progress import Progress

if TYPE_CHECKING:
    from imagion.catalog.importers import ImportReport
    from imagion.catalog.scoring import ScoreReport
    from imagion.evaluation.metrics import EvalReport
    from imagion.labels.store import LabelSummary
    from imagion.labels.suggestions import LabelStats
    from imagion.training.featurize import FeaturizeReport
    from imagion.training.options import TrainOptions, TrainResult

PathLike = str | Path


def import_posts(
    sources: Sequence[PathLike], catalog: PathLike = "imagion.db", timezone: str | None = None
) -> ImportReport:
    """Import Instagram's own exports ("Download your information" folder or .zip, the content
    CSV), instaloader folders, profilecrawl JSON and CSV manifests into `catalog` (created when
    missing). `timezone` (IANA) reads a content CSV's local times; inferred from an export given
    alongside when None. One bad value costs one line in `report.problems`, never the import."""
    from imagion.catalog.importers import import_sources
    from imagion.catalog.store import Catalog

    with Catalog(Path(catalog), create=True) as cat:
        return import_sources(cat, list(sources), timezone=timezone)


def score(catalog: PathLike = "imagion.db", **options: Any) -> ScoreReport:
    """Likes (or another metric) → per-account z → 0–10 image score, stored in the catalog.
    Options: metric ("likes", "engagement", "saves"…), window, min_posts, log, mapping
    ("percentile", "normal", "minmax")."""
    from imagion.catalog.scoring import score_catalog
    from imagion.catalog.store import Catalog

    with Catalog(Path(catalog)) as cat:
        return score_catalog(cat, **options)


def featurize(catalog: PathLike = "imagion.db", **options: Any) -> FeaturizeReport:
    """A frozen backbone's features of every catalog image, computed once and cached.
    Options: arch, image_size, tone, device."""
    from imagion.training.featurize import featurize_catalog

    return featurize_catalog(Path(catalog), **options)


def _options(options: TrainOptions | None, fields: dict[str, Any]) -> TrainOptions:
    from imagion.training.options import TrainOptions

    return replace(options or TrainOptions(), **fields)


def train(
    catalog: PathLike = "imagion.db", options: TrainOptions | None = None, **fields: Any
) -> TrainResult:
    """Train a model on the catalog's scored posts; `fields` override `options`
    (`imagion.TrainOptions`), e.g. train("me.db", split="time", init="default", out=Path("runs/me"))."""
    from imagion.training.loop import train as run

    return run(Path(catalog), _options(options, fields))


def evaluate(
    catalog: PathLike = "imagion.db",
    model: PathLike | None = None,
    *,
    held_out_only: bool = False,
    accounts: list[str] | None = None,
    min_ratio: float = 1.0,
    min_gap: float = 0.0,
    pairs: int | None = None,
    seed: int = 0,
    show_pairs: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
) -> EvalReport:
    """Pairwise accuracy of a checkpoint (default: the bundled model) on the catalog's posts;
    `report.in_sample` says when it trained on some of them (`held_out_only` keeps the others)."""
    from imagion.workflows.protocols import predict_checkpoint

    got = predict_checkpoint(
        Path(catalog),
        None if model is None else Path(model),
        accounts=accounts,
        held_out_only=held_out_only,
        device=device,
        progress=progress,
    )
    return _measured(
        got.frame, got.warnings, got.label, got.skipped, min_ratio, min_gap, pairs, seed, show_pairs
    )


def _measured(
    df: Any,
    warnings: list[str],
    label: str,
    skipped: list[str],
    min_ratio: float,
    min_gap: float,
    pairs: int | None,
    seed: int,
    show_pairs: int,
) -> EvalReport:
    """The report of predictions `df`; `warnings` are in-sample warnings (posts the model, or
    the checkpoint it started from, trained on): they make the report in-sample."""
    from imagion.evaluation.metrics import evaluate as measure

    report = measure(
        df, min_gap=min_gap, min_ratio=min_ratio, pairs=pairs, seed=seed, show_pairs=show_pairs
    )
    report.notes = warnings + report.notes
    report.in_sample = bool(warnings)
    report.label, report.skipped = label, skipped
    return report


def cross_validate(
    catalog: PathLike = "imagion.db",
    folds: int | str = 5,
    options: TrainOptions | None = None,
    *,
    time_blocks: int = 4,
    min_ratio: float = 1.0,
    min_gap: float = 0.0,
    pairs: int | None = None,
    show_pairs: int = 0,
    progress: Progress | None = None,
    **fields: Any,
) -> EvalReport:
    """K-fold leave-accounts-out CV of a training recipe (`folds` a number), or a rolling-origin
    CV in time (`folds="time"`, `time_blocks` per account); the pooled held-out predictions
    are measured as `evaluate` does."""
    from imagion.errors import OptionError
    from imagion.training.init import init_leak
    from imagion.workflows.protocols import run_cv, run_time_cv

    opts = _options(options, fields)
    recipe = (
        f"{opts.architecture} ({opts.epochs} epochs, {opts.loss} loss, lr {opts.lr:g}"
        f"{', init ' + opts.init if opts.init else ''})"
    )
    if folds == "time":
        got = run_time_cv(Path(catalog), time_blocks, opts, progress=progress)
        label = f"rolling-origin CV in time, {time_blocks} blocks per account, of {recipe}"
    elif isinstance(folds, int) and not isinstance(folds, bool):
        got = run_cv(Path(catalog), folds, opts, seed=opts.seed, progress=progress)
        label = f"{folds}-fold leave-accounts-out CV of {recipe}"
    else:
        raise OptionError("folds", folds, "use a number of folds (e.g. 5) or 'time'.")
    leak = init_leak(opts.init, got.frame["account"])
    warnings = [leak] if leak else []
    return _measured(
        got.frame, warnings, label, got.skipped, min_ratio, min_gap, pairs, opts.seed, show_pairs
    )


@dataclass
class LabelReport:
    """What `label` did (labelled, from the cache, problems) and the statistics it measured."""

    summary: LabelSummary
    stats: LabelStats


def label(
    catalog: PathLike = "imagion.db",
    provider: str = "local",
    *,
    refresh: bool = False,
    min_support: int = 5,
    top: int = 5,
    save_stats: PathLike | None = None,
    progress: Progress | None = None,
) -> LabelReport:
    """Label the catalog's posts with one provider ("local", "hashtags", "instagram", "google"),
    cached per image; returns the labels' statistics (the "top labels per score" table and each
    label's lift), written to `save_stats` (JSON) when given, for `rank(stats=…)`."""
    from imagion.catalog.store import Catalog
    from imagion.choices import Provider
    from imagion.labels.store import label_catalog, post_labels
    from imagion.labels.suggestions import label_stats

    which = Provider(provider)
    with Catalog(Path(catalog)) as cat:
        summary = label_catalog(cat, which, refresh=refresh, progress=progress)
        posts, labelled = post_labels(cat, which)
    stats = label_stats(posts, labelled, str(which), min_support=min_support, top=top)
    if save_stats is not None:
        stats.save(Path(save_stats))
    return LabelReport(summary, stats)


def rank(
    paths: Sequence[PathLike],
    *,
    engine: str = "local",
    out: PathLike | None = None,
    address: str | None = None,
    features: bool = False,
    labels: bool = False,
    **options: Any,
) -> Any:
    """Score image files best first. `engine="local"` (default): in this process, a `RankResult`
    (options: model, recursive, top, device, stats, suggest, crops, batch_size, progress).
    `engine="ray"`: on Ray Data (`pip install 'imagion[ray]'`), on this machine or the cluster
    at `address`, writing the Parquet table `out` (path, score, raw, error; `features`, `labels`
    add columns); returns a `BatchRankResult` with the counts, the first problems and the best
    `top`."""
    from imagion.choices import Engine

    if Engine(engine) == Engine.ray:
        from imagion.scale.ray_data import rank_on_ray

        return rank_on_ray(
            list(paths),
            out=None if out is None else Path(out),
            address=address,
            features=features,
            labels=labels,
            **options,
        )
    from imagion.inference.rank import rank_images

    return rank_images(paths, **options)
