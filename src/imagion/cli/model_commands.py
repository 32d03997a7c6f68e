"""Model commands: models, featurize, train."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.catalog.store import resolve_catalog_path
from imagion.choices import Device, EngineKind, SplitKind, Tone
from imagion.cli.app import CatalogOpt, DeviceOpt, JsonOpt, command
from imagion.cli.console import emit_json, err, out, plural, progress_bar, skipped_all
from imagion.cli.training_options import training_options
from imagion.training.options import TrainOptions, TrainResult
from imagion.workflows.verbs import architectures, featurize, train


@command("models")
def models_cmd(json_: JsonOpt = False) -> None:
    """List the model architectures available here.

    Example: imagion models
    """
    rows = [a.to_dict() for a in architectures()]
    if json_:
        emit_json(rows)
        return
    table = Table()
    for c in ("arch", "parameters", "input", "description"):
        table.add_column(c)
    for r in rows:
        size = f"{r['input']}×{r['input']}"
        table.add_row(str(r["arch"]), f"{r['parameters']:,}", size, str(r["description"]))
    out.print(table)


@command("featurize")
def featurize_cmd(
    catalog: CatalogOpt = None,
    arch: Annotated[
        str, typer.Option("--arch", help="A pretrained architecture (see `imagion models`).")
    ] = "effnet-lite0",
    image_size: Annotated[
        int | None, typer.Option(help="Input size, a multiple of 32 (default: native 224).")
    ] = None,
    tone: Annotated[Tone | None, typer.Option(help="Tone map, as train --tone.")] = None,
    device: DeviceOpt = Device.auto,
    engine: Annotated[
        EngineKind,
        typer.Option(
            help="local: in this process; ray: a Ray Data actor pool (pip extra: ray) writing the same cache."
        ),
    ] = EngineKind.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the cluster to join (its nodes must see the cache folder)."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Compute a frozen backbone's features of every catalog image once (cached, resumable).

    `train` and `eval` of that backbone then read them.

    Example: imagion featurize --image-size 224
    """
    path = resolve_catalog_path(catalog)
    with progress_bar("features") as update:
        rep = featurize(
            path,
            arch=arch,
            image_size=image_size,
            tone=str(tone) if tone else None,
            device=device,
            progress=update,
            engine=engine,
            address=address,
        )
    skipped_all(rep.problems)
    if json_:
        emit_json(
            {
                "images": rep.images,
                "computed": rep.computed,
                "cached": rep.cached,
                "skipped": rep.skipped,
                "problems": rep.problems,
                "seconds": rep.seconds,
                "images_per_s": rep.rate,
                "folder": str(rep.folder),
            }
        )
        return
    speed = f" at {rep.rate:,.0f} img/s" if rep.computed else ""
    out.print(
        f"features of {rep.images:,} images: {rep.computed:,} computed{speed}, {rep.cached:,} from "
        f"the cache, {rep.skipped:,} skipped; in {rep.folder}",
        highlight=False,
    )
    if rep.skipped and rep.skipped == rep.images:
        raise typer.Exit(1)  # not one image could be read: the lines above say why


@command("train")
@training_options
def train_cmd(  # over 60 lines: one Annotated option each; the body is ~20
    catalog: CatalogOpt = None,
    device: DeviceOpt = Device.auto,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run folder: best.pt, last.pt, metrics.csv.")
    ] = Path("runs/latest"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seed of the account split, initialisation and shuffling.")
    ] = 0,
    split: Annotated[
        SplitKind,
        typer.Option(
            help="Validation: held-out accounts, or each account's newest posts (works with one account)."
        ),
    ] = SplitKind.account,
    account: Annotated[
        list[str] | None,
        typer.Option("--account", "--accounts", help="Train on this account only (repeatable)."),
    ] = None,
    stats: Annotated[
        Path | None,
        typer.Option(
            help="Label statistics (labels --save-stats) to store with the model for its suggestions."
        ),
    ] = None,
    json_: JsonOpt = False,
    recipe: TrainOptions | None = None,
) -> None:
    """Train a model on the scored catalog; writes best.pt (self-describing) into --out.

    Example: imagion train --arch effnet-lite0 --epochs 40 --out runs/effnet
    Your own account: imagion train --split time --init default --out runs/me
    Several GPUs: torchrun --nproc-per-node 8 -m imagion train --arch seed-cnn
    """
    opts = replace(
        recipe or TrainOptions(),
        device=device,
        out=out_dir,
        resume=resume,
        seed=seed,
        split=SplitKind(split),
        accounts=account or None,
        stats=stats,
        command=" ".join(["imagion", *sys.argv[1:]]),
    )
    with progress_bar("training") as update:
        result = train(
            resolve_catalog_path(catalog),
            opts,
            progress=update,
        )
    if json_:
        emit_json(result.summary())
    else:
        out.print(_train_line(result.arch, result), highlight=False)
    if result.interrupted:
        err.print("interrupted: resume with --resume")
        raise typer.Exit(130)


def _train_line(arch: str, result: TrainResult) -> str:
    from imagion.evaluation.metrics import MIN_JUDGED_PAIRS

    acc = result.best_val_accuracy
    accounts = plural(len(result.val_accounts), "account")
    where = (
        f"the {result.val_posts} newest posts of {accounts}"
        if result.split == "time"
        else f"{len(result.val_accounts)} held-out {'account' if len(result.val_accounts) == 1 else 'accounts'}"
    )
    most_pairs = result.val_posts * (result.val_posts - 1) // 2  # an upper bound
    if acc is None:
        held_out = " (no validation posts)"
    elif most_pairs < MIN_JUDGED_PAIRS:
        held_out = f", validation on {where}: too few pairs to judge (at most {most_pairs})"
    else:
        held_out = f", validation pairwise accuracy {acc:.1%} on {where}"
    return (
        f"trained {arch} on {result.train_posts:,} posts of "
        f"{plural(len(result.train_accounts), 'account')}, {plural(result.epochs_run, 'epoch')}; best epoch "
        f"{result.best_epoch}{held_out}; skipped {len(result.skipped_images)} images; wrote "
        f"{result.checkpoint}"
    )
