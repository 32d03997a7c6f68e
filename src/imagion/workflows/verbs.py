"""imagion's verbs as Python calls: what `import imagion` offers (lazily) and what the command
line does for each command. Each takes paths and options, opens what it needs, and returns a
typed result; mistakes raise ImagionError (or a subclass) saying what to do."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from imagion._types import PathLike
from imagion.catalog.export_join import parse_timezone
from imagion.catalog.importers import import_sources
from imagion.catalog.store import Catalog, Columns, iso_time, no_scores_error
from imagion.choices import Device, EngineKind, Provider, ScoreMapping, ScoreMetric, choice
from imagion.errors import OptionError
from imagion.files import output_file
from imagion.labels.store import label_catalog, post_labels
from imagion.labels.suggestions import label_stats
from imagion.models.registry import REGISTRY, build_model, list_models
from imagion.progress import Progress
from imagion.training.featurize import featurize_catalog
from imagion.training.options import TrainFields, TrainOptions, with_fields

if TYPE_CHECKING:
    import pandas as pd

    from imagion.catalog.importers import ImportReport
    from imagion.catalog.scoring import ScoreReport
    from imagion.catalog.store import CatalogInfo
    from imagion.evaluation.metrics import EvalReport
    from imagion.labels.store import LabelSummary
    from imagion.labels.suggestions import LabelStats
    from imagion.training.featurize import FeaturizeReport
    from imagion.training.options import TrainResult


def import_posts(
    sources: Sequence[PathLike],
    catalog: PathLike = "imagion.db",
    timezone: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import Instagram's own exports ("Download your information" folder or .zip, the content
    CSV), instaloader folders, profilecrawl JSON and CSV manifests into `catalog` (created when
    missing). `timezone` (IANA) reads a content CSV's local times; inferred from an export given
    alongside when None. One bad value costs one line in `report.problems`, never the import."""
    parse_timezone(timezone)  # a wrong name is refused before a catalog is created
    path = Path(catalog)
    existed = os.path.lexists(path)
    try:
        with Catalog(path, create=True) as cat:
            report = import_sources(
                cat, [Path(s) for s in sources], timezone=timezone, progress=progress
            )
    except BaseException:  # a full disk, a crash, Ctrl-C: a catalog made by this call goes too
        if not existed:
            _remove_catalog(path)
        raise
    if report.posts == 0 and not existed:  # created by this call for nothing: not left behind
        _remove_catalog(path)
        report.no_catalog = True  # said by the caller, once
    return report


def _remove_catalog(path: Path) -> None:
    """A catalog this call created, with its SQLite side files (never one that was there)."""
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)


def info(catalog: PathLike = "imagion.db") -> CatalogInfo:
    """The catalog's summary: accounts, posts, images, scores, carousels, videos, dates."""
    with Catalog(Path(catalog)) as cat:
        return cat.info()


def posts(
    catalog: PathLike = "imagion.db",
    *,
    accounts: Sequence[str] | None = None,
    limit: int | None = None,
    everything: bool = True,
) -> PostsFrame:
    """The catalog's posts as a pandas DataFrame (ordered by account, then time), every stored
    field (`everything=False`: the listing's columns), times as ISO text; `total` is how many
    matched before `limit`."""
    import pandas as pd

    if limit is not None and limit < 0:
        raise OptionError("limit", limit, "use 0 or more rows.")
    where = ""
    params: tuple[str, ...] = ()
    if accounts:
        where = f"WHERE account IN ({','.join('?' * len(accounts))})"
        params = tuple(accounts)
    with Catalog(Path(catalog)) as cat:
        df = cat.frame(Columns.EVERYTHING if everything else Columns.LISTING, where, params)
    total = len(df)
    if limit is not None:
        df = df.head(limit)
    df["posted_at"] = df["posted_at"].map(lambda t: iso_time(t) if pd.notna(t) else None)
    return PostsFrame(df, total)


@dataclass
class PostsFrame:
    """`posts`: the rows asked for (a DataFrame) and how many matched in all."""

    frame: pd.DataFrame
    total: int

    def records(self) -> list[dict[str, object]]:
        """The rows as plain dicts (missing values None), as `posts --json` prints them."""
        df = self.frame
        return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def score(
    catalog: PathLike = "imagion.db",
    *,
    metric: ScoreMetric | str = "likes",
    window: int | None = None,
    min_posts: int = 3,
    log: bool = False,
    mapping: ScoreMapping | str = "percentile",
) -> ScoreReport:
    """Likes (or another metric: "engagement", "saves"…) → per-account z (over all earlier posts,
    or the `window` before each) → 0–10 image score ("percentile", "normal" or "minmax"
    `mapping`), stored in the catalog."""
    from imagion.catalog.scoring import score_catalog

    how = {
        "metric": choice(ScoreMetric, metric, "metric"),
        "mapping": choice(ScoreMapping, mapping, "mapping"),
    }  # checked before the catalog is opened
    with Catalog(Path(catalog)) as cat:
        return score_catalog(cat, window=window, min_posts=min_posts, log=log, **how)


def featurize(
    catalog: PathLike = "imagion.db",
    *,
    arch: str = "effnet-lite0",
    image_size: int | None = None,
    tone: str | None = None,
    device: str = "auto",
    engine: str = "local",
    address: str | None = None,
    progress: Progress | None = None,
) -> FeaturizeReport:
    """A frozen backbone's features of every catalog image, computed once into the cache (here,
    or on Ray Data with `engine="ray"`)."""
    return featurize_catalog(
        Path(catalog),
        arch,
        image_size,
        tone,
        str(choice(Device, device, "device")),
        progress=progress,
        engine=str(choice(EngineKind, engine, "engine")),
        address=address,
    )


def train(
    catalog: PathLike = "imagion.db",
    options: TrainOptions | None = None,
    *,
    progress: Progress | None = None,
    **fields: Unpack[TrainFields],
) -> TrainResult:
    """Train a model on the catalog's scored posts; `fields` (typed: `TrainOptions`' fields)
    override `options`, e.g. train("me.db", split="time", init="default", out="runs/me")."""
    from imagion.training.loop import train as run

    opts = with_fields(options, fields)
    opts.check()
    return run(Path(catalog), opts, progress=progress)


def evaluate(
    catalog: PathLike = "imagion.db",
    model: PathLike | None = None,
    *,
    held_out_only: bool = False,
    same_posts_as: PathLike | None = None,
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
    `report.in_sample` says when it trained on some of them (`held_out_only` keeps the others;
    `same_posts_as` another checkpoint: only the posts that one did not train on, so that two
    models are compared on the same pairs)."""
    from imagion.evaluation.metrics import check_options
    from imagion.workflows.protocols import predict_checkpoint

    check_options(
        min_gap=min_gap, min_ratio=min_ratio, pairs=pairs, seed=seed, show_pairs=show_pairs
    )
    got = predict_checkpoint(
        Path(catalog),
        None if model is None else Path(model),
        accounts=accounts,
        held_out_only=held_out_only,
        same_posts_as=None if same_posts_as is None else Path(same_posts_as),
        device=device,
        progress=progress,
    )
    report = _measured(
        got.frame, got.warnings, got.label, got.skipped, min_ratio, min_gap, pairs, seed, show_pairs
    )
    report.notes += got.caveats
    if held_out_only:  # the posts the model did not train on, each judged from earlier posts
        from imagion.workflows.history_eval import add_history_opinion  # pandas: not for rank

        add_history_opinion(report, Path(catalog), progress)
    return report


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
    **fields: Unpack[TrainFields],
) -> EvalReport:
    """K-fold leave-accounts-out CV of a training recipe (`folds` a number), or a rolling-origin
    CV in time (`folds="time"`, `time_blocks` per account); the pooled held-out predictions
    are measured as `evaluate` does."""
    from imagion.evaluation.metrics import check_options
    from imagion.training.init import init_leak
    from imagion.workflows.protocols import run_cv, run_time_cv

    opts = with_fields(options, fields)
    check_options(
        min_gap=min_gap, min_ratio=min_ratio, pairs=pairs, seed=opts.seed, show_pairs=show_pairs
    )
    opts.check()
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
    report = _measured(
        got.frame, warnings, label, got.skipped, min_ratio, min_gap, pairs, opts.seed, show_pairs
    )
    if folds == "time":  # each post judged only from earlier posts, beside the model
        from imagion.workflows.history_eval import add_history_opinion  # pandas: not for rank

        add_history_opinion(report, Path(catalog), progress)
    return report


@dataclass
class LabelReport:
    """What `label` did (labelled, from the cache, problems) and the statistics it measured
    (None with `measure=False`)."""

    summary: LabelSummary
    stats: LabelStats | None


def label(
    catalog: PathLike = "imagion.db",
    provider: str = "local",
    *,
    refresh: bool = False,
    min_support: int = 5,
    top: int = 5,
    save_stats: PathLike | None = None,
    measure: bool = True,
    concurrency: int | None = None,
    progress: Progress | None = None,
) -> LabelReport:
    """Label the catalog's posts with one provider ("local", "hashtags", "instagram", "google"),
    cached per image (Cloud Vision: `concurrency` requests in flight); with `measure`, returns
    the labels' statistics (the "top labels per score" table and each label's lift; the posts
    must be scored, which is checked before anything is labelled or billed), written to
    `save_stats` (JSON) when given, for `rank(stats=…)`."""
    which = choice(Provider, provider, "provider")
    if min_support < 1 or top < 1:
        bad = ("min_support", min_support) if min_support < 1 else ("top", top)
        raise OptionError(*bad, "use 1 or more.")
    if save_stats is not None:
        output_file(save_stats, "save_stats", (".json",))
    measure = measure or save_stats is not None
    with Catalog(Path(catalog)) as cat:
        if measure and not cat.has_scores():
            raise no_scores_error(cat)
        summary = label_catalog(
            cat, which, refresh=refresh, progress=progress, concurrency=concurrency
        )
        if not measure:
            return LabelReport(summary, None)
        scored, labelled = post_labels(cat, which)
    stats = label_stats(scored, labelled, str(which), min_support=min_support, top=top)
    if save_stats is not None:
        stats.save(Path(save_stats))
    return LabelReport(summary, stats)


@dataclass
class Architecture:
    """A model architecture available here: its name, size, input and what it is."""

    arch: str
    parameters: int
    input: int  # pixels a side
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "parameters": self.parameters,
            "input": self.input,
            "description": self.description,
        }


def architectures() -> list[Architecture]:
    """The architectures `train` can use here (those whose weights' packages are installed)."""
    found = []
    for name in list_models():
        spec = REGISTRY[name]
        m = build_model(name, pretrained=False) if spec.pretrained else build_model(name)
        n = sum(p.numel() for p in m.parameters())
        found.append(Architecture(name, n, m.preprocess.size, spec.description))
    return found
