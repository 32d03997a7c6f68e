"""The instagram-2017 study: which tone handling and which recipe, decided by numbers.

For each variant: 5-fold leave-accounts-out CV on instagram-2017 (10,765 posts, 744 accounts) and
transfer to ig-celeb12 (120 ordinary photos of 12 accounts never trained on: a model trained on
all of instagram-2017, evaluated on every same-account pair of ig-celeb12). Every figure comes
from `imagion eval --json`; the table is printed as Markdown and the raw results saved as JSON.

Tone variants (the crawl saved its images after y = clip(2x − 255), see the dataset's README):
* none: the pixels as they are, in training and in rank;
* crawl at inference: trained on the crawl's pixels as they are, ordinary photos mapped with
  the crawl's tone map at inference (the checkpoint's preprocessing says tone=crawl);
* equalize: per-image histogram equalization of every image, in training and at inference;
* tone augmentation: the crawl's pixels plus one tone-varied copy of each (shadows lifted by a
  random amount up to undoing the crawl's map, random gamma and contrast).

Usage: python scripts/instagram2017_study.py [--datasets DIR] [--work DIR] [--seed-cnn]
       [--only NAME…] [--out results.json]
The seed ConvNet's CV (--seed-cnn) trains 5 models of 17.4 M parameters: ~40 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from build_default_model import RECIPE  # the bundled model's recipe: one home

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
LINEAR_192 = [  # the previous bundled recipe (imagion 0.2)
    "--arch", "effnet-lite0", "--image-size", "192", "--loss", "pairwise", "--lr", "1e-3",
    "--epochs", "30", "--val-fraction", "0", "--seed", "0", "--device", "cpu",
]  # fmt: skip
SEED_CNN = [  # the seed deck's ConvNet: MSE on 0–10 scores (min-max mapped, as the deck did)
    "--arch", "seed-cnn", "--loss", "mse", "--lr", "1e-4", "--epochs", "2",
    "--val-fraction", "0", "--seed", "0", "--device", "cpu",
]  # fmt: skip
VARIANTS: dict[str, dict] = {
    "none": {"train": RECIPE},
    "crawl at inference": {"train": RECIPE, "infer_tone": "crawl"},
    "equalize": {"train": [*RECIPE, "--tone", "equalize"]},
    "tone augmentation": {"train": [*RECIPE, "--tone-augment", "1"]},
    "linear head, 192 px (imagion 0.2 recipe)": {"train": LINEAR_192},
}


def imagion(*args: str) -> str:
    print("$ imagion " + " ".join(args), file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "imagion", *args]
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def catalogs(datasets: Path, work: Path) -> dict[str, str]:
    dbs = {"ig": str(work / "ig2017.db"), "celeb": str(work / "celeb.db")}
    dbs["ig_minmax"] = str(work / "ig2017-minmax.db")
    for key, src, mapping in (
        ("ig", datasets / "instagram-2017" / "posts.csv", "percentile"),
        ("ig_minmax", datasets / "instagram-2017" / "posts.csv", "minmax"),
        ("celeb", datasets / "ig-celeb12", "percentile"),
    ):
        if not Path(dbs[key]).exists():
            imagion("import", str(src), "--catalog", dbs[key])
            imagion("score", "--catalog", dbs[key], "--mapping", mapping)
    return dbs


def figures(report: dict) -> dict:
    keep = ("accuracy", "ci95", "pairs", "accounts", "by_ratio", "baselines", "spearman")
    out = {k: report.get(k) for k in keep}
    cal = report.get("calibration")
    out["calibration"] = {k: cal[k] for k in ("log_loss", "brier", "ece", "pairs")} if cal else None
    return out


def with_tone(ckpt: Path, tone: str, dest: Path) -> Path:
    """A copy of a checkpoint whose preprocessing applies `tone` at inference."""
    from imagion.models.checkpoints import read_checkpoint, save_checkpoint

    data = read_checkpoint(ckpt)
    data["config"] = dict(data["config"]) | {"tone": tone}
    data["preprocess"] = dict(data["preprocess"]) | {"tone": tone}
    return save_checkpoint(dest, data)


def run_variant(name: str, spec: dict, dbs: dict[str, str], work: Path) -> dict:
    slug = "".join(c if c.isalnum() else "-" for c in name)
    t0 = time.time()
    db = dbs["ig_minmax"] if spec.get("minmax") else dbs["ig"]
    cv = json.loads(
        imagion(
            "eval", "--catalog", db, "--cv", str(FOLDS), "--out", str(work / slug / "cv"),
            "--json", *spec["train"],
        )
    )  # fmt: skip
    result = {"cv": figures(cv), "cv_seconds": round(time.time() - t0)}
    if spec.get("transfer", True):
        out = work / slug / "all"
        imagion("train", "--catalog", db, "--out", str(out), "--json", *spec["train"])
        model = out / "best.pt"
        if spec.get("infer_tone"):
            model = with_tone(model, spec["infer_tone"], out / f"best-{spec['infer_tone']}.pt")
        transfer = json.loads(
            imagion("eval", "--catalog", dbs["celeb"], "--model", str(model), "--json")
        )
        result["transfer"] = figures(transfer)
    return result


def _pct(fig: dict | None, ratio: float | None = None) -> str:
    if not fig:
        return "–"
    if ratio is None:
        acc, ci = fig["accuracy"], fig["ci95"]
    else:
        row = next((r for r in fig["by_ratio"] if r["min_ratio"] == ratio), None)
        if row is None or row["accuracy"] is None:
            return "–"
        acc, ci = row["accuracy"], row["ci95"]
    return f"{acc:.1%} [{ci[0]:.1%}, {ci[1]:.1%}]" if ci else f"{acc:.1%}"


def markdown(results: dict) -> str:
    lines = [
        "| variant | account-CV, all pairs | ≥ 2× likes | ≥ 3× likes | CV log loss / ECE | ig-celeb12 transfer |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        cal = r["cv"].get("calibration")
        cal_s = f"{cal['log_loss']:.3f} / {cal['ece']:.3f}" if cal else "–"
        lines.append(
            f"| {name} | {_pct(r['cv'])} | {_pct(r['cv'], 2.0)} | {_pct(r['cv'], 3.0)} | "
            f"{cal_s} | {_pct(r.get('transfer'))} |"
        )
    base = next(iter(results.values()))["cv"]["baselines"]
    lines.append(
        "\nbaselines on the same CV pairs: " + ", ".join(f"{k} {v:.1%}" for k, v in base.items())
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--work", type=Path, default=None, help="keep catalogs and runs here")
    ap.add_argument("--seed-cnn", action="store_true", help="also the seed ConvNet (~40 min)")
    ap.add_argument("--only", nargs="*", help="only these variants")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args()
    variants = dict(VARIANTS)
    if args.seed_cnn:
        variants["seed ConvNet, MSE, 100 px, 2 epochs"] = {
            "train": SEED_CNN,
            "minmax": True,
            "transfer": False,
        }
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        dbs = catalogs(args.datasets, work)
        results = {name: run_variant(name, spec, dbs, work) for name, spec in variants.items()}
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
