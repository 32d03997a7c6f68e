"""`imagion rank -r` of a folder the photo index already holds, against its first run, as whole
processes; then `pick` of it, and the cost of adding 100 photos.

Makes N photos (tests/bursts.py sources × 5 near-duplicates, 480 px wide JPEGs, in 10 subfolders),
then times with a fresh index: `rank DIR -r --json` (first run: every photo decoded and scored),
the same again (every photo from the index), `pick DIR -r -n 5 --json` (from the index), and, after
adding 100 photos, `rank DIR -r --json` (100 decoded). Peak memory (max RSS) of each process.

Usage: python bench/index_speed.py [--photos 2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bursts import write_bursts  # noqa: E402


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and the peak memory (MiB) of one imagion process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "imagion", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, err = proc.communicate()
    took = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(err.decode()[-2000:])
    return took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "library"
        per = max(1, args.photos // 50)  # sources per subfolder (× 5 photos)
        for k in range(10):
            write_bursts(root / f"{k:02d}", per, size=(480, 360), first=k * per)
        extra = Path(tmp) / "extra"
        write_bursts(extra, 20, size=(480, 360), first=10_000)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGION_CACHE": str(Path(tmp) / "cache")}
        n = sum(1 for _ in root.rglob("*.jpg"))
        first, m1 = timed(["rank", str(root), "-r", "--json"], env)
        print(f"{n:,} photos, first `rank -r` (all scored): {first:.1f} s", flush=True)
        again, m2 = timed(["rank", str(root), "-r", "--json"], env)
        print(f"again, from the index: {again:.1f} s ({first / again:.1f}× faster)", flush=True)
        pick, _ = timed(["pick", str(root), "-r", "-n", "5", "--json"], env)
        print(f"`pick -r -n 5` from the index: {pick:.1f} s", flush=True)
        extra.rename(root / "extra")
        added, _ = timed(["rank", str(root), "-r", "--json"], env)
        print(f"after adding 100 photos: {added:.1f} s (100 scored)", flush=True)
        print(f"peak memory of the processes: {m1:,.0f} MiB (first), {m2:,.0f} MiB (largest)")


if __name__ == "__main__":
    main()
