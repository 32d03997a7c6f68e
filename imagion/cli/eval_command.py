"""Measuring a model: eval."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from imagion.catalog.store import resolve_catalog_path
from imagion.choices import Device, Split
from imagion.cli.app import CatalogOpt, DeviceOpt, JsonOpt, ModelOpt, command
from imagion.cli.console import emit_json, err, note, out, progress_bar
from imagion.cli.training_options import training_options
from imagion.training.options import TrainOptions

if TYPE_CHECKING:
    import pandas as pd

    from imagion.evaluation.metrics import EvalReport


@command("eval")
@training_options
def eval_cmd(
    catalog: CatalogOpt = None,
    model: ModelOpt = None,
    accounts: Annotated[
        list[str] | None, typer.Option("--accounts", help="Only these accounts.")
    ] = None,
    split: Annotated[
        Split, typer.Option(help="val = only the accounts the checkpoint held out.")
    ] = Split.all,
    pairs: Annotated[int | None, typer.Option(help="Sample N pairs (the seed's protocol).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for pair sampling, bootstrap and CV folds.")] = 0,
    min_gap: Annotated[
        float, typer.Option(help="Keep pairs whose standardized likes differ by ≥ Z.")
    ] = 0.0,
    show_pairs: Annotated[int, typer.Option(help="Print N example comparisons.")] = 0,
    cv: Annotated[
        int | None,
        typer.Option(
            help="K-fold leave-accounts-out cross-validation: trains K models with the training options below."
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="With --cv: folder for the fold runs.")
    ] = Path("runs/cv"),
    device: DeviceOpt = Device.auto,
    json_: JsonOpt = False,
    recipe: TrainOptions | None = None,
) -> None:
    """Pairwise accuracy: for two posts of one account, does the model order them as their likes?

    Example: imagion eval --cv 4 --arch effnet-lite0     (or: imagion eval --model runs/x/best.pt --split val)
    """
    from imagion.evaluation.metrics import evaluate

    path = resolve_catalog_path(catalog)
    with progress_bar("evaluating") as update:
        prog = lambda desc, d, t, info="": update(d, t, info=f"{desc} {info}")  # noqa: E731
        if cv:
            opts = replace(recipe or TrainOptions(), device=device, out=out_dir, seed=seed)
            df, problems, notes, label = _cross_validate(path, cv, opts, prog)
        else:
            df, problems, notes, label = _checkpoint_predictions(
                path, model, accounts, split, device, prog
            )
    for p in problems:
        err.print(f"[yellow]skipped:[/] {p}", highlight=False)
    report = evaluate(df, min_gap=min_gap, pairs=pairs, seed=seed, show_pairs=show_pairs)
    report.notes = notes
    if json_:
        emit_json(report.to_dict() | {"evaluated": label, "trained_on_eval_accounts": bool(notes)})
        return
    _render_eval(report, label)


Predictions = tuple["pd.DataFrame", list[str], list[str], str]


def _cross_validate(
    path: Path, k: int, opts: TrainOptions, prog: Callable[..., None]
) -> Predictions:
    from imagion.evaluation.protocols import run_cv

    df, _folds, problems = run_cv(path, k, opts, seed=opts.seed, progress=prog, log=note)
    label = (
        f"{k}-fold leave-accounts-out CV of {opts.arch} ({opts.epochs} epochs, "
        f"{opts.loss} loss, lr {opts.lr:g})"
    )
    return df, problems, [], label


def _checkpoint_predictions(
    path: Path,
    model: Path | None,
    accounts: list[str] | None,
    split: Split,
    device: Device,
    prog: Callable[..., None],
) -> Predictions:
    from imagion.evaluation.protocols import predict_checkpoint

    return predict_checkpoint(
        path,
        model,
        accounts=accounts,
        held_out_only=split == Split.val,
        device=device,
        progress=lambda d_, a, b: prog(d_, a, b),
    )


def _render_eval(report: EvalReport, label: str) -> None:
    from imagion.evaluation.metrics import REFERENCE_POINTS

    for n in report.notes:
        err.print(f"[bold red]{n}[/]", highlight=False)
    table = Table(title="per account", title_justify="left")
    for c in ("account", "posts", "pairs", "accuracy", "spearman", "kendall"):
        table.add_column(c, justify="left" if c == "account" else "right")
    for r in report.per_account:
        table.add_row(
            r["account"],
            str(r["posts"]),
            str(r["pairs"]),
            f"{r['accuracy']:.1%}",
            f"{r['spearman']:+.2f}",
            f"{r['kendall']:+.2f}",
        )
    out.print(table)
    for e in report.examples:
        mark = "✓" if e["correct"] else "✗"
        out.print(
            f"{mark} {e['account']}: {Path(str(e['a'])).name} ({e['likes_a']:,} likes, {e['pred_a']:+.3f}) vs "
            f"{Path(str(e['b'])).name} ({e['likes_b']:,} likes, {e['pred_b']:+.3f})",
            highlight=False,
        )
    base = ", ".join(f"{k} {v:.1%}" for k, v in report.baselines.items())
    refs = ", ".join(f"{k} {v:.1%}" for k, v in REFERENCE_POINTS.items())
    out.print(
        f"{label}\nspearman {report.spearman:+.3f}, kendall {report.kendall:+.3f} (mean within account)\n"
        f"reference points: {refs}",
        highlight=False,
    )
    out.print(
        f"accuracy {report.accuracy:.1%} [{report.ci95[0]:.1%}, {report.ci95[1]:.1%}] on {report.pairs:,} pairs "
        f"of {report.accounts} accounts (ties {report.ties}) — {base}",
        highlight=False,
    )
