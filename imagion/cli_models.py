"""Model commands: train, eval, rank, compare (registered on the app of imagion.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagion.catalog import resolve_catalog_path
from imagion.cli import CatalogOpt, JsonOpt, command
from imagion.errors import ImagionError
from imagion.options import Device, Loss
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
    image_size: Annotated[
        int | None,
        typer.Option(help="EfficientNet input size, a multiple of 32 (default: native 224)."),
    ] = None,
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
        patience=patience, finetune=finetune, hidden=hidden, compile=compile_, image_size=image_size,
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


ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model", help="Checkpoint (best.pt). Default: the bundled model.", show_default=False
    ),
]


def _tip(row: dict) -> str:
    seen = ", ".join(row.get("labels", [])[:3]) or "nothing recognised"
    add = ", ".join(row.get("suggest_labels", []))
    weak = " (weak)" if "weak evidence" in row.get("suggestion", "") else ""
    return f"{seen} → {add}{weak}" if add else seen


def _bar(score: float, width: int = 20) -> str:
    n = round(score / 10 * width)
    return "█" * n + "·" * (width - n)


@command("rank")
def rank_cmd(
    paths: Annotated[
        list[str], typer.Argument(help="Image files, folders or globs (JPEG, PNG, WebP, GIF, TIFF, BMP…).")
    ],
    model: ModelOpt = None,
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Search folders recursively.")
    ] = False,
    top: Annotated[int | None, typer.Option(help="Show (and copy) only the best K.")] = None,
    copy_to: Annotated[
        Path | None, typer.Option(help="Copy the top images here, named rank_score_name.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass (default: by model).")
    ] = None,
    device: DeviceOpt = Device.auto,
    suggest: Annotated[
        bool, typer.Option(help="Add content suggestions (EfficientNet-Lite0 models).")
    ] = True,
    json_: JsonOpt = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
) -> None:
    """Score images 0–10 (10 = excellent) and list them best first.

    Example: imagion rank ~/Pictures/candidates/*.jpg --top 3 --copy-to ~/to-post
    """
    from imagion.files import writable_folder
    from imagion.rank import copy_top, rank_images

    if copy_to is not None:  # before the work, not after it
        writable_folder(copy_to, "--copy-to")
    with progress_bar("scoring") as update:
        result = rank_images(paths, model=model, recursive=recursive, batch_size=batch_size,
                             device=str(device), progress=lambda d, t: update(d, t), suggest=suggest)  # fmt: skip
    for p in result.problems:
        err.print(f"[yellow]skipped:[/] {p}", highlight=False)
    rows = result.to_list()[: top or None]
    if copy_to is not None:
        copied = copy_top(result, copy_to, top)
        note(f"copied {len(copied)} images to {copy_to}")
    if json_:
        emit_json(rows)
    elif csv_:
        import csv
        import sys

        w = csv.DictWriter(
            sys.stdout,
            fieldnames=["rank", "path", "score", "raw", "suggestion"],
            extrasaction="ignore",
        )
        w.writeheader()
        w.writerows(rows)
    else:
        table = Table(
            title=f"image score (0–10) · model {Path(result.model).name} ({result.arch})",
            title_justify="left",
        )
        table.add_column("#", justify="right")
        table.add_column("file", overflow="fold")
        table.add_column("score", justify="right")
        table.add_column("")
        with_tips = any("suggestion" in r for r in rows)
        if with_tips:
            table.add_column("seen → suggested content", overflow="fold")
        for r in rows:
            tip = [_tip(r)] if with_tips else []
            table.add_row(
                str(r["rank"]), r["path"], f"{r['score']:.1f}", _bar(r["score"], 10), *tip
            )
        out.print(table)
    note(f"ranked {len(result.items)} images, skipped {len(result.problems)}")


@command("compare")
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="First image.")],
    b: Annotated[Path, typer.Argument(help="Second image.")],
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
    json_: JsonOpt = False,
) -> None:
    """Which of two images will get more attention? Prints the winner, both scores and P(A beats B).

    Example: imagion compare beach.jpg city.jpg
    """
    from imagion.rank import compare_images

    c = compare_images(a, b, model=model, device=str(device))
    if json_:
        emit_json(c.to_dict())
        return
    out.print(
        f"{c.winner.path.name} should get more attention: "
        f"{c.a.path.name} {c.a.score:.1f} vs {c.b.path.name} {c.b.score:.1f}; "
        f"P({c.a.path.name} beats {c.b.path.name}) = {c.p_a_wins:.0%}",
        highlight=False,
    )
    for side in (c.a, c.b):
        if side.suggestion is not None:
            out.print(f"  {side.path.name}: {side.suggestion.text}", highlight=False)


@command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
) -> None:
    """The upload page: up to 5 pictures, a 0–10 score and a suggestion for each.

    Example: imagion serve --port 8000   (then open http://127.0.0.1:8000)
    """
    from imagion.serve import make_server

    try:
        server = make_server(host, port, model=model, device=str(device))
    except OSError as exc:
        raise ImagionError(
            f"cannot listen on {host}:{port} ({exc.strerror}); try another --port."
        ) from None
    note(f"imagion is serving on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        note("stopped")
    finally:
        server.server_close()
