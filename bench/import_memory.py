"""Peak memory and time of `imagion import` on two large inputs (issue #35):

* `export`: an Instagram export whose three post lists are 40 MiB each (about 280,000 posts
  each, images absent): 1.6 GB before; the target is under 1 GB;
* `csv`: a 300,000-row CSV manifest whose rows name 20 images: 570 MB and 112 s before, every
  row held to the end and the same image hashed once per row.

    python bench/import_memory.py {export,csv} [--repo PATH] [--rows 300000] [--mib 40]

Prints the maximum resident set size (/usr/bin/time -v) and the wall time; --repo runs another
checkout (an older commit unpacked with `git archive`) for a before/after figure."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def write_export(folder: Path, mib: int, files: int = 3) -> Path:
    root = folder / "instagram-benchuser-2024-01-01"
    content = root / "your_instagram_activity" / "content"
    content.mkdir(parents=True)
    n = 0
    for k in range(1, files + 1):
        posts, size = [], 0
        while size < mib * 2**20:
            item = {
                "media": [
                    {
                        "uri": f"media/posts/202401/{n}.jpg",
                        "creation_timestamp": 1_600_000_000 + n,
                        "title": f"post {n} #bench",
                    }
                ]
            }
            posts.append(item)
            size += len(json.dumps(item)) + 2
            n += 1
        (content / f"posts_{k}.json").write_text(json.dumps(posts))
    return root


def write_manifest(folder: Path, rows: int, images: int = 20) -> Path:
    for k in range(images):
        arr = np.random.default_rng(k).integers(0, 255, (320, 320, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{k}.jpg", quality=90)
    path = folder / "posts.csv"
    with open(path, "w") as f:
        f.write("account,image,likes,posted_at,post_id,caption\n")
        for r in range(rows):
            day = f"2023-{r % 12 + 1:02d}-{r % 28 + 1:02d}"
            f.write(f"acc{r % 50},img{r % images}.jpg,{r % 997},{day},p{r},caption {r} #tag\n")
    return path


def measure(repo: Path, source: Path, db: Path) -> tuple[float, float, int, str]:
    env = os.environ | {"PYTHONPATH": str(repo)}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "imagion", "import", str(source)]
    res = subprocess.run(
        [*cmd, "--catalog", str(db), "--json"], env=env, capture_output=True, text=True, cwd=repo
    )
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", res.stderr)
    secs = 0.0
    if wall:
        h, m, s = wall.groups()
        secs = int(h or 0) * 3600 + int(m) * 60 + float(s)
    try:
        posts = json.loads(res.stdout).get("posts")
    except ValueError:
        posts = None
        print(res.stdout[-1000:], res.stderr[-2000:], file=sys.stderr)
    return (int(rss.group(1)) / 1024 if rss else float("nan")), secs, res.returncode, str(posts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["export", "csv"])
    ap.add_argument("--repo", type=Path, default=ROOT)
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--mib", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.what == "export":
            source = write_export(folder, args.mib)
            label = f"export, three {args.mib} MiB post lists"
        else:
            source = write_manifest(folder, args.rows)
            label = f"CSV manifest, {args.rows:,} rows naming 20 images"
        mb, secs, rc, posts = measure(args.repo.resolve(), source, folder / "bench.db")
    print(f"{label}: peak RSS {mb:,.0f} MB, {secs:.1f} s, {posts} posts (exit {rc}) [{args.repo}]")


if __name__ == "__main__":
    main()
