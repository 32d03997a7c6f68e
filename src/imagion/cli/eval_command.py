"""Measuring a model: eval."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from imagion.catalog.store import resolve_catalog_path
from imagion.choices import Device, EvalSplit
from imagion.cli.app import CatalogOpt, DeviceOpt, JsonOpt, ModelOpt, command
from imagion.cli.console import (
    emit_json,
    err,
    for_cli,
    note,
    out,
    plural,
    progress_bar,
    say,
    skipped_all,
    visible,
)
from imagion.cli.training_options import training_options
from imagion.errors import ImagionError
from imagion.evaluation.plots import PLOT_SUFFIXES, save_eval_plot
from imagion.files import atomic_path, output_file
from imagion.spreadsheet import safe_frame
from imagion.training.options import TrainOptions
from imagion.workflows.verbs import cross_validate, evaluate

if TYPE_CHECKING:
    from imagion.evaluation.metrics import EvalReport


@command("eval")
@training_options
def eval_cmd(  # over 60 lines: one Annotated option each; the body is ~25
    catalog: CatalogOpt = None,
    model: ModelOpt = None,
    accounts: Annotated[
        list[str] | None,
        typer.Option("--account", "--accounts", help="Only this account (repeatable)."),
    ] = None,
    split: Annotated[
        EvalSplit,
        typer.Option(
            help="val or time: only posts the checkpoint did not train on (held-out accounts, or posts newer than its training posts)."
        ),
    ] = EvalSplit.all,
    same_posts_as: Annotated[
        Path | None,
        typer.Option(
            help="Only the posts this other checkpoint did not train on: before/after on the same pairs (e.g. the bundled model vs runs/me/best.pt)."
        ),
    ] = None,
    pairs: Annotated[
        int | None, typer.Option(help="Sample N pairs (the original design's protocol).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for pair sampling, bootstrap and CV folds.")] = 0,
    min_gap: Annotated[
        float, typer.Option(help="Keep pairs whose standardized likes differ by ≥ Z.")
    ] = 0.0,
    min_ratio: Annotated[
        float,
        typer.Option(
            help="Keep pairs whose likes differ by a factor ≥ R (e.g. 2: one has twice the other's)."
        ),
    ] = 1.0,
    show_pairs: Annotated[int, typer.Option(min=0, help="Print N example comparisons.")] = 0,
    cv: Annotated[
        str | None,
        typer.Option(
            help="K (a number): leave-accounts-out cross-validation; 'time': rolling origin over each account's posts in time order. Trains models with the training options below."
        ),
    ] = None,
    time_blocks: Annotated[int, typer.Option(help="With --cv time: blocks per account.")] = 4,
    pairs_out: Annotated[
        Path | None,
        typer.Option(
            help="Write every evaluated pair to this CSV (account, a, b, likes_a, likes_b, p_a_beats_b, …)."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Draw the reliability diagram, per-account accuracy and baselines into this PNG."
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

    Example: imagion eval --cv 4 --plot eval.png     (or: imagion eval --model runs/me/best.pt --split time)
    """
    path = resolve_catalog_path(catalog)
    if cv and same_posts_as is not None:
        raise ImagionError("--same-posts-as compares two checkpoints; --cv trains its own models.")
    _check_outputs(pairs_out, plot)
    with progress_bar("evaluating") as update:
        if cv:
            opts = replace(recipe or TrainOptions(), device=device, out=out_dir, seed=seed)
            report = cross_validate(
                path,
                _folds(cv),
                opts,
                time_blocks=time_blocks,
                min_gap=min_gap,
                min_ratio=min_ratio,
                pairs=pairs,
                show_pairs=show_pairs,
                progress=update,
            )
        else:
            report = evaluate(
                path,
                model,
                held_out_only=split != EvalSplit.all,
                same_posts_as=same_posts_as,
                accounts=accounts,
                min_gap=min_gap,
                min_ratio=min_ratio,
                pairs=pairs,
                seed=seed,
                show_pairs=show_pairs,
                device=str(device),
                progress=update,
            )
    skipped_all(report.skipped)
    _write_outputs(report, report.label, pairs_out, plot)
    if json_:
        emit_json(
            report.to_dict()
            | {"evaluated": report.label, "trained_on_eval_accounts": report.in_sample}
        )
        return
    _render_eval(report, report.label)


def _folds(cv: str) -> int | str:
    """--cv K (a number of folds) or --cv time; anything else goes to the verb, which says what
    it takes."""
    if cv.strip().lower() == "time":
        return "time"
    try:
        return int(cv)
    except ValueError:
        return cv


def _check_outputs(pairs_out: Path | None, plot: Path | None) -> None:
    """Output paths are checked before any work."""
    from imagion.evaluation.metrics import PAIR_COLUMNS

    if pairs_out is not None:
        output_file(pairs_out, "pairs_out", (".csv",), header=PAIR_COLUMNS)
    if plot is not None:
        output_file(plot, "plot", PLOT_SUFFIXES)


def _write_outputs(
    report: EvalReport, label: str, pairs_out: Path | None, plot: Path | None
) -> None:
    if pairs_out is not None and report.pairs_table is not None:
        with atomic_path(pairs_out) as tmp:
            safe_frame(report.pairs_table).to_csv(tmp, index=False)
        note(f"wrote {len(report.pairs_table):,} pairs to {pairs_out}")
    if plot is not None:
        note(f"wrote {save_eval_plot(report, plot, label)}")


def _render_eval(report: EvalReport, label: str) -> None:
    from imagion.evaluation.metrics import REFERENCE_POINTS

    for n in report.notes:
        err.print(Text(for_cli(n), style="bold red"), highlight=False)
    _render_accounts(report)
    for e in report.examples:
        mark = "✓" if e["correct"] else "✗"
        say(
            f"{mark} {e['account']}: {Path(str(e['a'])).name} ({e['likes_a']:,} likes, {e['pred_a']:+.3f}) vs "
            f"{Path(str(e['b'])).name} ({e['likes_b']:,} likes, {e['pred_b']:+.3f})"
        )
    _render_by_ratio(report)
    base = ", ".join(f"{k} {v:.1%}" for k, v in report.baselines.items())
    refs = ", ".join(f"{k} {v:.1%}" for k, v in REFERENCE_POINTS.items())
    say(
        f"{label}\nspearman {_signed(report.spearman)}, kendall {_signed(report.kendall)} "
        "(how alike the model's order and the likes' order are within an account, averaged: "
        "0 unrelated, 1 the same)\nreference points (published elsewhere, not measured on "
        f"these pairs): {refs}"
    )
    _render_calibration(report)
    _render_scores(report)
    say(f"baselines on the same pairs: {base}")
    rules = {k: v for k, v in report.baselines.items() if k != "chance"}
    if rules and max(rules.values()) >= report.accuracy:
        best = max(rules, key=lambda k: rules[k])
        say(
            f"a simple rule does as well as the model here ({best} {rules[best]:.1%}): on these "
            "posts the model adds nothing it can show."
        )
    if report.history is not None:
        say(f"history opinion: {report.history.verdict()}")
    line = accuracy_line(report)
    if report.in_sample:  # wrapped at 80 columns, still the last line's words
        line, _, _ = line.partition(IN_SAMPLE)
        say(line.rstrip())
        say(IN_SAMPLE.lstrip(" —"))
    else:
        say(line)


def _render_scores(report: EvalReport) -> None:
    """How the shown scores held: the 80% range's coverage and, in fifths of the predicted
    score, the mean predicted vs the mean actual score."""
    fig = report.scores
    if fig is None and report.scores_unmeasured:
        say(f"scores: {for_cli(report.scores_unmeasured)}")
        return
    if fig is None:
        say(
            "scores: this model has no held-out predictions behind its scores (no 80% range; "
            "its score is a percentile among its training posts)"
        )
        return
    table = Table(
        title="shown scores vs actual scores (fifths of the predicted score)", title_justify="left"
    )
    for c in ("posts", "mean predicted", "mean actual", "in 80% range"):
        table.add_column(c, justify="right")
    for b in fig["bins"]:
        table.add_row(
            f"{b['posts']:,}", f"{b['predicted']:.2f}", f"{b['actual']:.2f}", f"{b['coverage']:.0%}"
        )
    out.print(table)
    left_out = (
        f" ({fig['left_out']:,} posts it was fitted on left out)" if fig.get("left_out") else ""
    )
    say(
        f"scores on {fig['posts']:,} posts{left_out}: {fig['coverage']:.1%} of actual scores "
        f"inside their 80% range (mean width {fig['mean_width']:.1f}); mean predicted within "
        f"{fig['max_bin_gap']:.2f} of mean actual in every fifth"
    )


MAX_ACCOUNT_ROWS = 40  # beyond this the per-account table goes to --json and --plot only


def _render_accounts(report: EvalReport) -> None:
    if len(report.per_account) > MAX_ACCOUNT_ROWS:
        note(
            f"per-account figures of {len(report.per_account):,} accounts: in --json "
            "(per_account) and --plot"
        )
        return
    table = Table(title="per account", title_justify="left")
    for c in ("account", "posts", "pairs", "accuracy", "spearman", "kendall"):
        table.add_column(c, justify="left" if c == "account" else "right")
    for r in report.per_account:
        table.add_row(
            visible(r["account"]),
            str(r["posts"]),
            str(r["pairs"]),
            f"{r['accuracy']:.1%}",
            _signed(r["spearman"], 2),
            _signed(r["kendall"], 2),
        )
    out.print(table)


def _signed(x: float, digits: int = 3) -> str:
    return f"{x:+.{digits}f}" if math.isfinite(x) else "n/a"


IN_SAMPLE = " — IN-SAMPLE: the model trained on these posts; not an estimate for new posts"


def accuracy_line(report: EvalReport, base: str = "") -> str:
    """The last line, which is what people read: too few pairs are said to be too few, and
    accuracy on posts the model trained on says so on the same line."""
    from imagion.evaluation.metrics import MIN_JUDGED_PAIRS

    where = f"{plural(report.pairs, 'pair')} of {plural(report.accounts, 'account')} (ties {report.ties})"
    if report.pairs < MIN_JUDGED_PAIRS:
        head = f"too few pairs to judge ({where}; at least {MIN_JUDGED_PAIRS} are needed)"
    else:
        head = f"accuracy {report.accuracy:.1%} [{report.ci95[0]:.1%}, {report.ci95[1]:.1%}] on {where}"
    if report.in_sample:
        head += IN_SAMPLE
    return f"{head} — {base}" if base else head


def _render_by_ratio(report: EvalReport) -> None:
    """Where the model is useful: accuracy on pairs whose likes differ by at least R×."""
    table = Table(title="accuracy by likes ratio of the pair", title_justify="left")
    for c in ("pairs", "count", "accuracy", "95% interval"):
        table.add_column(c, justify="left" if c == "pairs" else "right")
    for r in report.by_ratio:
        name = "all" if r["min_ratio"] == 1 else f"≥ {r['min_ratio']:g}×"
        acc = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
        ci = "n/a" if not r["ci95"] else f"[{r['ci95'][0]:.1%}, {r['ci95'][1]:.1%}]"
        table.add_row(name, f"{r['pairs']:,}", acc, ci)
    out.print(table)


def _render_calibration(report: EvalReport) -> None:
    cal = report.calibration
    if cal is None:
        say(
            "calibration: this model has no calibrated win probability (none is shown by "
            "compare or rank)"
        )
        return
    table = Table(
        title="reliability of P(a beats b) (confidence in the predicted winner)",
        title_justify="left",
    )
    for c in ("confidence bin", "pairs", "mean confidence", "won"):
        table.add_column(c, justify="right")
    for b in cal["bins"]:
        table.add_row(
            f"{b['lo']:.2f}–{b['hi']:.2f}",
            str(b["pairs"]),
            f"{b['confidence']:.1%}",
            f"{b['accuracy']:.1%}",
        )
    out.print(table)
    say(
        f"calibration on {cal['pairs']:,} pairs: log loss {cal['log_loss']:.3f} (a coin: 0.693), "
        f"Brier {cal['brier']:.3f} (a coin: 0.250), ECE {cal['ece']:.3f}"
    )
    say(
        "  (lower is better; ECE: the average gap between the stated probability and how often "
        "it came true; docs/evaluation.md explains each)"
    )
