"""Refit the bundled model's shown scores (expected score and 80% range) without retraining it.

`scripts/build_default_model.py` does this as part of a full rebuild (~6 minutes on 2 free
cores, far more on a busy machine). This is the same fit on the same held-out posts, for the head
that ships: the 5-fold leave-accounts-out CV of the bundled recipe (the same folds, seed and
recipe as the build: the same fold models), each held-out post's position among its fold model's
training outputs and its actual score → `ScoreModel`, written into the shipped checkpoint's card
with `imagion.rewrite_card` and the ONNX export redone beside it. The folds' own win probabilities
are not fitted (only their positions are needed), which makes it 5 trainings instead of 25.

Measured, and recorded in the card (`evaluation.cv.scores`, `evaluation.transfer.scores`):
* account-CV: the range and expectation fitted on 4 folds' held-out posts, measured on the 5th's
  (each fold's posts judged by a fit that never saw them or their accounts), pooled;
* transfer: the bundled model with its refitted card on ig-celeb12 (12 accounts never trained on).

Usage: python scripts/refit_bundled_scores.py [DATASETS_DIR] [--work DIR] [--out DIR] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

import imagion
from imagion.models.expected_score import ScoreModel, interval_figures

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_default_model import (  # one home for the recipe
    FOLDS,
    RECIPE,
    card_text,
    fit_on_cv,
)

ROOT = Path(__file__).resolve().parents[1]


def catalogs(datasets: Path, work: Path) -> tuple[Path, Path]:
    db, celeb = work / "ig2017.db", work / "celeb.db"
    for path, src in ((db, datasets / "instagram-2017" / "posts.csv"), (celeb, datasets / "ig-celeb12")):  # fmt: skip
        if not path.exists():
            imagion.import_posts([src], path)
            imagion.score(path)
    return db, celeb


def cross_fitted(frame) -> dict:  # type: ignore[no-untyped-def]
    """The range and expectation of each fold's posts from a fit on the other folds' posts."""
    parts = []
    for f in sorted(frame["fold"].unique()):
        rest, held = frame[frame["fold"] != f], frame[frame["fold"] == f]
        model = ScoreModel.fit(rest["position"].to_numpy(), rest["score"].to_numpy(), "other folds")
        mean, low, high = model.predict(held["position"].to_numpy())
        parts.append((mean, low, high, held["score"].to_numpy()))
    mean, low, high, actual = (np.concatenate(v) for v in zip(*parts, strict=True))
    figures = interval_figures(mean, low, high, actual)
    assert figures is not None
    return figures


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="· %(message)s")
    from imagion.inference.engine import export_onnx
    from imagion.settings import bundled_export_path, bundled_model_path
    from imagion.training import calibrate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="?", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--work", type=Path, default=Path("refit-work"))
    ap.add_argument("--out", type=Path, help="write the model and export here, not the package")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse --work's cv-predictions.csv (no CV run)"
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db, celeb = catalogs(args.datasets, args.work)
    saved = args.work / "cv-predictions.csv"
    if args.reuse and saved.is_file():  # the CV's held-out predictions of an earlier run
        import pandas as pd

        frame = pd.read_csv(saved)
    else:
        # only the fold models' positions are needed: their own win probabilities are not fitted
        calibrate.out_of_fold_pairs = lambda fit, initial: None  # type: ignore[assignment]
        cv = imagion.cross_validate(db, FOLDS, replace(RECIPE, out=args.work / "cv"))
        assert cv.frame is not None
        frame = cv.frame[cv.frame["position"].notna()]
        keep = ["account", "post_id", "likes", "score", "pred", "position", "fold"]
        frame[keep].to_csv(saved, index=False)
    cv_scores = cross_fitted(frame)
    model_out = (args.out or bundled_model_path().parent) / "default-model.pt"
    export_out = args.out / "default-model-onnx" if args.out else bundled_export_path()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled_model_path(), model_out)
    card = imagion.read_card(model_out)
    assert card.calibration is not None
    card.calibration.expected = fit_on_cv(frame)
    imagion.rewrite_card(model_out, card)
    transfer = imagion.evaluate(celeb, model_out)
    evaluation = dict(card.evaluation)
    evaluation["cv"] = dict(evaluation.get("cv") or {}) | {"scores": cv_scores}
    evaluation["transfer"] = dict(evaluation.get("transfer") or {}) | {"scores": transfer.scores}
    evaluation["model_card"] = card_text(evaluation["cv"], evaluation["transfer"])
    card.evaluation = evaluation
    imagion.rewrite_card(model_out, card)
    shutil.rmtree(export_out, ignore_errors=True)
    export_onnx(model_out, export_out)
    summary = {"cv": cv_scores, "transfer": transfer.scores, "expected": card.calibration.expected.to_dict()}  # fmt: skip
    (args.work / "scores.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: {"coverage": v["coverage"], "max_bin_gap": v["max_bin_gap"]} for k, v in summary.items() if k != "expected"}))  # fmt: skip


if __name__ == "__main__":
    main()
