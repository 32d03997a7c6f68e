"""`rank --engine ray` against the in-process `rank`, on the same photos, on this machine.

Makes N real-sized photos (1080×1080 progressive JPEGs, as bench/rank_speed.py does), then times
each engine as a whole process (start-up, model load, Ray's own start-up included):
  * `imagion rank DIR --json`
  * `imagion rank DIR --engine ray --out scores.parquet --json` (a local Ray on every core)
and checks that the scores agree (to 1e-4). Prints both times, img/s and the ratio.

Usage: python bench/ray_rank.py [--images 2000] [--folder DIR]   (DIR: reuse photos made before)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from rank_speed import make_photos  # noqa: E402


def run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    return time.perf_counter() - t0, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "photos"
        if not folder.is_dir() or len(list(folder.glob("*.jpg"))) < args.images:
            folder.mkdir(parents=True, exist_ok=True)
            make_photos(folder, args.images)
        imagion = [sys.executable, "-m", "imagion", "rank", str(folder)]
        local_s, local_out = run([*imagion, "--json", "--no-index"])  # scored, not indexed
        table = Path(tmp) / "scores.parquet"
        ray_s, _ = run([*imagion, "--engine", "ray", "--out", str(table), "--json"])
        import pyarrow.parquet as pq

        local = {r["path"]: r["score"] for r in json.loads(local_out)}
        rows = pq.read_table(table).to_pylist()
        worst = max(abs(local[r["path"]] - r["score"]) for r in rows if r["error"] is None)
        n = len(local)
        print(f"{n} photos (1080×1080 JPEG) on this machine")
        print(f"in-process rank : {local_s:6.1f} s  {n / local_s:6.1f} img/s")
        print(
            f"rank --engine ray: {ray_s:6.1f} s  {n / ray_s:6.1f} img/s  (local Ray, {len(rows)} rows)"
        )
        print(
            f"ratio ray / in-process: {ray_s / local_s:.2f}×; largest score difference {worst:.2e}"
        )


if __name__ == "__main__":
    main()
