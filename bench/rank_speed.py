"""`imagion rank` speed against a straightforward loop, both timed as whole processes.

Makes a folder of real-sized (1080×1080) JPEGs, then times
  * `imagion rank DIR --json` (one model load, batched inference, DCT-scaled JPEG decoding in
    threads that overlap the forward passes), and
  * a plain loop in a fresh Python process with the same backbone: model loaded once, full-size
    decode, crop and resize, one forward pass per image;
for the bundled model (frozen EfficientNet-Lite0 at 224 px + MLP head), the previous bundled
model's shape (192 px, linear head: the cost of the larger input) and seed-cnn.

Usage: python bench/rank_speed.py [--images 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

LOOP = r"""
import sys, torch
from pathlib import Path
from PIL import Image
from imagion.models.checkpoints import read_checkpoint, model_from_checkpoint
from imagion.models.transforms import Preprocess
path, folder = sys.argv[1], Path(sys.argv[2])
ckpt = read_checkpoint(path)
model = model_from_checkpoint(ckpt, Path(path)).eval()
pre = Preprocess.from_dict(ckpt["preprocess"])
mean = torch.tensor(pre.mean).view(3, 1, 1); std = torch.tensor(pre.std).view(3, 1, 1)
scores = {}
for f in sorted(folder.glob("*.jpg")):
    im = Image.open(f).convert("RGB")
    w, h = im.size; s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((pre.size, pre.size))
    x = torch.from_numpy(__import__("numpy").asarray(im)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        scores[f.name] = float(model(((x - mean) / std)[None]))
print(len(scores))
"""


def make_photos(folder: Path, n: int) -> None:
    """Instagram-like files: the public-domain demo photos, cropped, resized to 1080×1080 and saved
    as progressive JPEGs at quality 85 (all 120 ig-celeb12 photos are progressive, ~190 kB)."""
    samples = sorted((ROOT / "data" / "samples").glob("*.jpg"))
    rng = np.random.default_rng(0)
    for k in range(n):
        im = Image.open(samples[k % len(samples)]).convert("RGB")
        w, h = im.size
        s = int(min(w, h) * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        im = im.crop((x, y, x + s, y + s)).resize((1080, 1080), Image.Resampling.BICUBIC)
        im.save(folder / f"photo{k:03d}.jpg", quality=85, progressive=True)


def timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=200)
    args = ap.parse_args()
    from imagion.models.checkpoints import card_for, checkpoint_payload, save_checkpoint
    from imagion.models.registry import build_model
    from imagion.models.transforms import Calibration
    from imagion.settings import bundled_model_path

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        make_photos(folder, args.images)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{args.images} JPEGs of 1080×1080 ({mb:.1f} MB)")
        seed = Path(tmp) / "seed-cnn.pt"
        m = build_model("seed-cnn")
        save_checkpoint(
            seed, checkpoint_payload(m, card_for(m, Calibration.fit(np.linspace(-1, 1, 50))))
        )
        small = Path(tmp) / "lite0-192.pt"  # the previous bundled recipe's size: the trade-off
        m = build_model("effnet-lite0", image_size=192)
        save_checkpoint(
            small, checkpoint_payload(m, card_for(m, Calibration.fit(np.linspace(-1, 1, 50))))
        )
        one = Path(tmp) / "one"
        one.mkdir()
        (one / "photo000.jpg").write_bytes((folder / "photo000.jpg").read_bytes())
        for label, ckpt in (
            ("default model (effnet-lite0, 224 px, MLP head)", bundled_model_path()),
            ("effnet-lite0, 192 px, linear head (the previous default)", small),
            ("seed-cnn", seed),
        ):
            env = os.environ | {"IMAGION_CACHE": str(Path(tmp) / "cache")}
            rank = [
                sys.executable,
                "-m",
                "imagion",
                "rank",
                "--model",
                str(ckpt),
                "--json",
                "--no-index",
            ]
            first = timed([*rank, str(one)], env)  # cold: exports the checkpoint to ONNX once
            fast = timed([*rank, str(folder)], env)
            start = timed([*rank, str(one)], env)
            slow = timed([sys.executable, "-c", LOOP, str(ckpt), str(folder)], env)
            print(
                f"{label}: imagion rank {args.images / fast:6.1f} images/s ({fast:.1f} s) · "
                f"plain loop {args.images / slow:6.1f} images/s ({slow:.1f} s) · ratio {slow / fast:.2f}× · "
                f"1 image {start:.1f} s, so {(args.images - 1) / max(fast - start, 1e-9):.0f} images/s after "
                f"start-up · very first run (ONNX export) {first:.1f} s"
            )


if __name__ == "__main__":
    main()
