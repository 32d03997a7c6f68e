"""Peak memory of `imagion rank` on eight 59-megapixel PNGs (issue #35: 3.8 GB with
IMAGION_THREADS=8 before the decoders shared a byte budget; the target is under 1.5 GB with 16).

    python bench/decode_memory.py [--threads 16] [--files 8] [--repo PATH]

Writes the PNGs (7680×7680 gradients with noise, 59.0 MP each) to a temporary folder, runs
`python -m imagion rank DIR --no-suggest --json` under /usr/bin/time -v and prints its maximum
resident set size. --repo runs another checkout (e.g. an older commit unpacked with `git archive`)
for a before/after figure."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIDE = 7680  # 59.0 megapixels, under images.MAX_PIXELS (60 MP)


def write_pngs(folder: Path, n: int) -> None:
    ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
    for k in range(n):
        rng = np.random.default_rng(k)
        arr = np.empty((SIDE, SIDE, 3), np.uint8)
        for c in range(3):
            arr[..., c] = ((ramp[None, :] * (c + 1) + ramp[:, None] * (k + 1)) % 256).astype(
                np.uint8
            )
        arr[::7, ::5] = rng.integers(0, 255, arr[::7, ::5].shape, dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"big{k}.png", compress_level=1)
        del arr


def peak_rss(repo: Path, folder: Path, threads: int) -> tuple[float, float, int]:
    """(max RSS in MB, seconds, exit status) of one rank run."""
    env = os.environ | {"PYTHONPATH": str(repo), "IMAGION_THREADS": str(threads)}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "imagion", "rank", str(folder)]
    res = subprocess.run(
        [*cmd, "--no-suggest", "--json"], env=env, capture_output=True, text=True, cwd=repo
    )
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", res.stderr)
    secs = 0.0
    if wall:
        h, m, s = wall.groups()
        secs = int(h or 0) * 3600 + int(m) * 60 + float(s)
    if res.returncode:
        print(res.stderr[-2000:], file=sys.stderr)
    return (int(rss.group(1)) / 1024 if rss else float("nan")), secs, res.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--repo", type=Path, default=ROOT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_pngs(folder, args.files)
        mb, secs, rc = peak_rss(args.repo.resolve(), folder, args.threads)
    print(
        f"{args.files} PNGs of {SIDE * SIDE / 1e6:.1f} MP, IMAGION_THREADS={args.threads}: "
        f"peak RSS {mb:,.0f} MB, {secs:.1f} s (exit {rc}) [{args.repo}]"
    )


if __name__ == "__main__":
    main()
