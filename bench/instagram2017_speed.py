"""How long instagram-2017 takes end to end on this machine: import, score, featurizing every
image once (cold cache; ONNX Runtime beside the plain PyTorch loop on the same images), seconds
per epoch of the bundled recipe's head, and `imagion eval` with a warm cache.

Usage: python bench/instagram2017_speed.py [--datasets DIR] [--torch-sample N]
Runs in a temporary catalog and cache (the user's cache is not touched). Figures for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "imagion", *args],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


def torch_features_rate(paths: list[str], size: int) -> float:
    """img/s of the plain PyTorch loop (decode, then a batch of 32 through the backbone)."""
    import numpy as np
    import torch

    from imagion.images import load_square
    from imagion.models.registry import build_model

    torch.set_num_threads(os.cpu_count() or 1)
    model = build_model("effnet-lite0", image_size=size).eval()
    t = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(paths), 32):
            batch = np.stack([load_square(p, size) for p in paths[s : s + 32]])
            model.features(model.preprocess.normalize(torch.from_numpy(batch)))
    return len(paths) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--torch-sample", type=int, default=640, help="images for the PyTorch loop")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    from build_default_model import RECIPE

    manifest = args.datasets / "instagram-2017" / "posts.csv"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, IMAGION_CACHE=f"{tmp}/cache")
        os.environ["IMAGION_CACHE"] = env["IMAGION_CACHE"]
        db = f"{tmp}/ig.db"
        t_import = run("import", str(manifest), "--catalog", db, env=env)
        t_score = run("score", "--catalog", db, env=env)

        from imagion.catalog.store import Catalog
        from imagion.models.caches import frozen_features
        from imagion.models.registry import build_model
        from imagion.training.split import training_frame

        with Catalog(Path(db)) as cat:
            df = training_frame(cat)
        paths, shas = df["image"].tolist(), df["image_sha256"].tolist()
        import torch

        model = build_model("effnet-lite0", image_size=224).eval()
        t = time.perf_counter()
        feats = frozen_features(model, paths, shas, Path(env["IMAGION_CACHE"]), torch.device("cpu"))
        t_feat = time.perf_counter() - t
        ort_rate = int(feats.ok.sum()) / t_feat
        t = time.perf_counter()
        frozen_features(model, paths, shas, Path(env["IMAGION_CACHE"]), torch.device("cpu"))
        t_warm = time.perf_counter() - t
        torch_rate = torch_features_rate(paths[: args.torch_sample], 224)

        recipe = [a for a in RECIPE]
        recipe[recipe.index("--val-fraction") + 1] = "0.2"  # validation: no inner calibration CV
        recipe[recipe.index("--epochs") + 1] = "5"
        out = f"{tmp}/run"
        t_train = run("train", "--catalog", db, "--out", out, "--patience", "99", *recipe, env=env)
        with open(f"{out}/metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        train_rows = int(0.8 * len(df))
        per_epoch = [train_rows / float(r["images_per_s"]) for r in rows]
        t_eval = run("eval", "--catalog", db, "--model", f"{out}/best.pt", "--json", env=env)
        t_cv = run(
            "eval", "--catalog", db, "--cv", "5", "--out", f"{tmp}/cv", "--json", *RECIPE, env=env
        )

    print(f"instagram-2017: {len(df):,} scored posts with an image, {os.cpu_count()} CPU cores")
    print(f"import (whole process)                 {t_import:6.1f} s")
    print(f"score                                  {t_score:6.1f} s")
    print(
        f"features, cold (ONNX Runtime, 224 px)  {t_feat:6.1f} s = {ort_rate:5.0f} img/s "
        f"(PyTorch loop on {args.torch_sample} of them: {torch_rate:4.0f} img/s; "
        f"ratio {ort_rate / torch_rate:.1f}×)"
    )
    print(f"features, warm (read from the cache)   {t_warm:6.1f} s")
    print(
        f"head training, bundled recipe          {min(per_epoch):6.2f}–{max(per_epoch):.2f} s per epoch "
        f"({train_rows:,} posts); 5 epochs + checks: {t_train:.1f} s whole process"
    )
    print(f"eval of a checkpoint, warm cache       {t_eval:6.1f} s whole process (77k pairs)")
    print(f"eval --cv 5 of the bundled recipe      {t_cv:6.1f} s whole process (warm features)")


if __name__ == "__main__":
    main()
