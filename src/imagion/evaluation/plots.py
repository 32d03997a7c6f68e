"""`imagion eval --plot FILE.png`: one figure with the reliability diagram, per-account accuracy
with intervals, and the model against its baselines on the same pairs (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagion.files import atomic_path, figure_marks, output_file

if TYPE_CHECKING:
    from imagion.evaluation.metrics import EvalReport


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _wilson(k: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion (pairs of one account are not independent: a guide)."""
    if n == 0:
        return 0.0, 1.0
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _reliability(ax: Any, report: EvalReport) -> None:
    ax.plot([0.5, 1], [0.5, 1], color="0.6", linestyle="--", label="perfectly calibrated")
    cal = report.calibration
    if cal:
        bins = cal["bins"]
        xs = [b["confidence"] for b in bins]
        ys = [b["accuracy"] for b in bins]
        sizes = [20 + 200 * b["pairs"] / max(cal["pairs"], 1) for b in bins]
        ax.scatter(xs, ys, s=sizes, color="#d6336c", zorder=3, label="pairs (size: how many)")
        ax.plot(xs, ys, color="#d6336c")
        title = f"log loss {cal['log_loss']:.3f} · Brier {cal['brier']:.3f} · ECE {cal['ece']:.3f}"
    else:
        title = "no calibrated probability in this model"
    ax.set(
        xlim=(0.45, 1.02),
        ylim=(0, 1.02),
        xlabel="confidence in the predicted winner",
        ylabel="how often it won",
        title=f"reliability\n{title}",
    )
    ax.legend(loc="lower right", fontsize=8)


def _scores(ax: Any, report: EvalReport) -> None:
    """The shown scores: mean actual vs mean predicted score in fifths, and the 80% range."""
    ax.plot([0, 10], [0, 10], color="0.6", linestyle="--", label="predicted = actual")
    fig = report.scores
    if fig:
        xs = [b["predicted"] for b in fig["bins"]]
        ys = [b["actual"] for b in fig["bins"]]
        ax.plot(xs, ys, "o-", color="#d6336c", label="mean actual score")
        title = f"{fig['coverage']:.0%} inside the 80% range · largest gap {fig['max_bin_gap']:.2f}"
    elif report.scores_unmeasured:
        title = "the 80% range was fitted on these posts: not measurable here"
    else:
        title = "no held-out predictions behind the scores"
    ax.set(
        xlim=(0, 10),
        ylim=(0, 10),
        xlabel="predicted score (mean of a fifth)",
        ylabel="actual score",
        title=f"scores\n{title}",
    )
    ax.legend(loc="upper left", fontsize=8)


PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".pdf")
MAX_NAMED_ACCOUNTS = 40  # beyond this, a histogram of per-account accuracy


def _accounts(ax: Any, report: EvalReport) -> None:
    if len(report.per_account) > MAX_NAMED_ACCOUNTS:
        accs = [r["accuracy"] for r in report.per_account]
        ax.hist(accs, bins=20, range=(0, 1), color="#1c7ed6")
        ax.axvline(0.5, color="0.4", linestyle="--")
        ax.set(
            xlabel="pairwise accuracy of an account",
            ylabel="accounts",
            title=f"per account ({_count(len(accs), 'account')})",
        )
        return
    rows = sorted(report.per_account, key=lambda r: r["accuracy"])
    names = [r["account"] for r in rows]
    acc = [float(r["accuracy"] or 0.0) for r in rows]
    lo_hi = [_wilson(r["accuracy"] * r["pairs"], r["pairs"]) for r in rows]
    err = [
        [a - lo for a, (lo, _) in zip(acc, lo_hi, strict=True)],
        [hi - a for a, (_, hi) in zip(acc, lo_hi, strict=True)],
    ]
    ax.errorbar(acc, range(len(rows)), xerr=err, fmt="o", color="#1c7ed6", ecolor="0.6", capsize=2)
    ax.axvline(0.5, color="0.6", linestyle="--")
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.set(xlim=(0, 1), xlabel="pairwise accuracy (95% Wilson interval)", title="per account")


def _baselines(ax: Any, report: EvalReport) -> None:
    names = ["model", *report.baselines]
    values = [report.accuracy, *report.baselines.values()]
    colors = ["#d6336c"] + ["0.65"] * len(report.baselines)
    ax.barh(range(len(names)), values, color=colors)
    lo, hi = report.ci95
    ax.errorbar(
        [report.accuracy],
        [0],
        xerr=[[report.accuracy - lo], [hi - report.accuracy]],
        color="k",
        capsize=4,
    )
    ax.axvline(0.5, color="0.4", linestyle="--")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set(
        xlim=(0, 1),
        xlabel="pairwise accuracy on the same pairs",
        title=f"model vs baselines ({_count(report.pairs, 'pair')}, {_count(report.accounts, 'account')})",
    )


def _by_ratio(ax: Any, report: EvalReport) -> None:
    rows = [r for r in report.by_ratio if r["accuracy"] is not None]
    names = ["all" if r["min_ratio"] == 1 else f"≥ {r['min_ratio']:g}×" for r in rows]
    acc = [float(r["accuracy"] or 0.0) for r in rows]
    lo = [a - (r["ci95"] or [a, a])[0] for a, r in zip(acc, rows, strict=True)]
    hi = [(r["ci95"] or [a, a])[1] - a for a, r in zip(acc, rows, strict=True)]
    ax.bar(range(len(rows)), acc, yerr=[lo, hi], color="#d6336c", capsize=4)
    for k, r in enumerate(rows):
        ax.text(k, 0.02, f"{r['pairs']:,} pairs", ha="center", fontsize=7, color="white")
    ax.axhline(0.5, color="0.4", linestyle="--")
    ax.set_xticks(range(len(rows)), names)
    ax.set(
        ylim=(0, 1),
        xlabel="likes ratio of the pair",
        ylabel="pairwise accuracy (95% interval)",
        title="where the model is useful",
    )


def save_eval_plot(report: EvalReport, path: Path, label: str) -> Path:
    """Write the figure (PNG, or any format matplotlib knows by the suffix), atomically."""
    from matplotlib.figure import Figure  # no pyplot: no process-wide backend or figure state

    path = output_file(path, "plot", PLOT_SUFFIXES)
    fig = Figure(figsize=(26, 5.2), layout="constrained")
    axes = fig.subplots(1, 5)
    _reliability(axes[0], report)
    _by_ratio(axes[1], report)
    _accounts(axes[2], report)
    _baselines(axes[3], report)
    _scores(axes[4], report)
    fig.suptitle(label, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp,
            dpi=110,
            format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"),
            **figure_marks(path),
        )
    return path
