"""Model commands: train, eval, rank, compare (registered on the app of imagion.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.catalog import resolve_catalog_path
from imagion.cli import CatalogOpt, JsonOpt, command
from imagion.train import Device, Loss
from imagion.ui import emit_json, err, note, out, progress_bar

ArchOpt = Annotated[
    str, typer.Option("--arch", help="Architecture: seed-cnn, effnet-lite0 (see `imagion models`).")
]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run: auto picks CUDA when present.")]


@command("models")
def models_cmd(json_: JsonOpt = False) -> None:
    """List the model architectures available here.

    Example: imagion models
    """
    from imagion.model import REGISTRY, build_model, list_models

    rows = []
    for name in list_models():
        m = build_model(name, pretrained=False) if name.startswith("effnet") else build_model(name)
        rows.append({"arch": name, "parameters": sum(p.numel() for p in m.parameters()),
                     "input": m.preprocess.size, "description": REGISTRY[name].description})  # fmt: skip
    if json_:
        emit_json(rows)
        return
    table = Table()
    for c in ("arch", "parameters", "input", "description"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["arch"], f"{r['parameters']:,}", f"{r['input']}×{r['input']}", r["description"]
        )
    out.print(table)


@command("train")
def train_cmd(
    catalog: CatalogOpt = None,
    arch: ArchOpt = "effnet-lite0",
    epochs: Annotated[int, typer.Option(help="Passes over the training posts.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Posts per step (per GPU under torchrun).")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-4,
    loss: Annotated[
        Loss, typer.Option(help="mse on the 0–10 score (the seed's) or pairwise (RankNet).")
    ] = Loss.pairwise,
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
    val_fraction: Annotated[
        float, typer.Option(help="Share of accounts held out for validation.")
    ] = 0.2,
    patience: Annotated[
        int, typer.Option(help="Stop after N epochs without a better validation accuracy.")
    ] = 10,
    finetune: Annotated[
        bool, typer.Option("--finetune", help="Unfreeze the pretrained backbone.")
    ] = False,
    hidden: Annotated[int, typer.Option(help="Hidden units of the head (0 = linear head).")] = 0,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the model (CUDA).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Train a model on the scored catalog; writes best.pt (self-describing) into --out.

    Example: imagion train --arch effnet-lite0 --epochs 40 --out runs/effnet
    Several GPUs: torchrun --nproc-per-node 8 -m imagion train --arch seed-cnn
    """
    from imagion.train import TrainOptions, train

    opts = TrainOptions(
        arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, loss=loss,
        device=device, out=out_dir, resume=resume, seed=seed, val_fraction=val_fraction,
        patience=patience, finetune=finetune, hidden=hidden, compile=compile_,
    )  # fmt: skip
    with progress_bar("training") as update:
        result = train(
            resolve_catalog_path(catalog), opts,
            progress=lambda desc, d, t, info: update(d, t, info=f"{desc} {info}"),
            log=note,
        )  # fmt: skip
    summary = {
        "checkpoint": str(result.checkpoint),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_pairwise_accuracy": result.best_val_accuracy,
        "train_posts": result.train_posts,
        "val_posts": result.val_posts,
        "train_accounts": len(result.train_accounts),
        "val_accounts": len(result.val_accounts),
        "skipped_images": len(result.skipped_images),
        "interrupted": result.interrupted,
    }
    if json_:
        emit_json(summary)
    else:
        acc = result.best_val_accuracy
        out.print(
            f"trained {arch} on {result.train_posts:,} posts of {len(result.train_accounts)} accounts, "
            f"{result.epochs_run} epochs; best epoch {result.best_epoch}"
            + (f", validation pairwise accuracy {acc:.1%} on {len(result.val_accounts)} held-out accounts"
               if acc is not None else " (no validation accounts)")
            + f"; skipped {len(result.skipped_images)} images; wrote {result.checkpoint}",
            highlight=False,
        )  # fmt: skip
    if result.interrupted:
        err.print("interrupted: resume with --resume")
        raise typer.Exit(130)
