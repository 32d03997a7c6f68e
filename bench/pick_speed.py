"""`imagion rank --groups` and `imagion pick` against plain `imagion rank`, as whole processes.

Makes 1,000 photos: 200 varied synthetic source photos (gradients, textures, shapes; tests/bursts.py)
× 5 near-duplicates each (a crop, an exposure change, a low JPEG quality, a small rotation, a
horizontal shift) at 1080 px wide, then times, alternating, `rank DIR --json`, `rank DIR --groups
--json` and `pick DIR -n 10 --json` (the same model, the same decoding; grouping reuses the
features and the decoded input of the ranking pass) and prints each against plain `rank`, per round and for the fastest run of each.

Usage: python bench/pick_speed.py [--sources 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bursts import write_bursts  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shoot"
        truth = write_bursts(folder, args.sources, size=(1080, 810))
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{len(truth)} JPEGs, 1080 px wide ({mb:.1f} MB), {args.sources} source photos")
        env = os.environ | {"IMAGION_CACHE": str(Path(tmp) / "cache"), "PYTHONPATH": str(ROOT)}
        base = [sys.executable, "-m", "imagion"]
        runs = {
            "rank": [*base, "rank", str(folder), "--json", "--no-index"],  # each round scores
            "rank --groups": [*base, "rank", str(folder), "--groups", "--json", "--no-index"],
            "pick -n 10": [*base, "pick", str(folder), "-n", "10", "--json", "--no-index"],
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.rounds):
            for name, cmd in runs.items():
                t, out = timed(cmd, env)
                times[name].append(t)
                if name == "rank --groups":
                    rows = json.loads(out)
                    groups = {r["group"] for r in rows}
                    mixed = sum(
                        len({truth[Path(r["path"]).name] for r in rows if r["group"] == g}) > 1
                        for g in groups
                    )
                    print(f"  grouping: {len(groups)} groups, {mixed} mixing two sources")
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
        )
        for k in range(args.rounds):
            plain = times["rank"][k]
            cells = [f"rank {plain:.1f} s"] + [
                f"{name} {times[name][k]:.1f} s ({times[name][k] / plain:.2f}×)"
                for name in runs
                if name != "rank"
            ]
            print(f"round {k + 1}: " + " · ".join(cells))
        # on a shared machine the fastest run of each is the least disturbed one
        best = {name: min(t) for name, t in times.items()}
        print(
            "fastest of each: "
            + " · ".join(f"{name} {t:.1f} s ({t / best['rank']:.2f}×)" for name, t in best.items())
        )


if __name__ == "__main__":
    main()
