"""Decode speed per photo format, as a ratio to JPEG, measured side by side; and the installed
size of the light install (imagion's `dependencies` and everything they pull in).

Makes the same photos (ig-celeb12's when the datasets are there, else the demo photos) at
Instagram's 1080×1350 in each format a phone or camera writes: JPEG (quality 90), HEIC (quality
90, pillow-heif), AVIF (quality 80, Pillow), a DNG with a 1080×1350 embedded preview (an 8-bit RGB
preview: tests/photo_files.py writes DNGs offline without a JPEG codec; cameras embed JPEGs,
which decode at JPEG speed plus LibRaw's parse), and a DNG without a preview (a 12 MP mosaic,
demosaiced at half size). Each round decodes every file of every format with
`imagion.images.load_square(path, 224)` (what rank does per file), formats interleaved; the
fastest round per format is reported.

Usage: python bench/decode_formats.py [--photos 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _datasets import default_datasets  # noqa: E402 (bench/, the script's folder)
from PIL import Image, ImageOps  # noqa: E402

from imagion.images import load_square  # noqa: E402
from tests.photo_files import write_dng, write_heic  # noqa: E402

SIZE = (1080, 1350)


def sources(n: int) -> list[Image.Image]:
    data = default_datasets()
    files = sorted((data / "ig-celeb12").rglob("*.jpg"))[:n] or sorted(
        (ROOT / "data" / "samples").glob("*.jpg")
    )
    ims = [ImageOps.fit(Image.open(p).convert("RGB"), SIZE) for p in files]
    return [ims[k % len(ims)] for k in range(n)]


def write_all(folder: Path, ims: list[Image.Image]) -> dict[str, list[Path]]:
    made: dict[str, list[Path]] = {k: [] for k in ("JPEG", "HEIC", "AVIF", "DNG preview")}
    for k, im in enumerate(ims):
        made["JPEG"].append(folder / f"{k}.jpg")
        im.save(made["JPEG"][-1], quality=90)
        made["HEIC"].append(write_heic(folder / f"{k}.heic", im, quality=90))
        made["AVIF"].append(folder / f"{k}.avif")
        im.save(made["AVIF"][-1], quality=80)
        made["DNG preview"].append(write_dng(folder / f"{k}.dng", im))
    made["DNG, no preview (12 MP)"] = [
        write_dng(folder / f"raw{k}.dng", None, raw_size=(4000, 3000))
        for k in range(len(ims) // 4 or 1)
    ]
    return made


def light_install_mb() -> tuple[float, dict[str, float]]:
    """MB on disk of imagion's light dependencies and their own, as installed here (RECORD)."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [re.split(r"[<>=!~;\[ ]", d)[0] for d in deps]
    seen: dict[str, float] = {}
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        size = sum((f.size or 0) for f in dist.files or [])
        seen[name] = size / 1e6
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[<>=!~;\[ (]", req)[0])
    return sum(seen.values()), seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        made = write_all(Path(tmp), sources(args.photos))
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for r in range(args.rounds):
            for fmt, files in made.items():
                t0, c0 = time.perf_counter(), time.process_time()
                for p in files:
                    load_square(p, 224)
                per = (time.perf_counter() - t0) / len(files)
                per_cpu = (time.process_time() - c0) / len(files)
                best[fmt] = min(best.get(fmt, per), per)
                cpu[fmt] = min(cpu.get(fmt, per_cpu), per_cpu)
                print(f"round {r + 1}: {fmt}: {1000 * per:.1f} ms/photo", file=sys.stderr)
        kb = {fmt: sum(p.stat().st_size for p in fs) / len(fs) / 1e3 for fmt, fs in made.items()}
    print(f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()}")
    print(
        "| format | wall ms per photo (1080×1350 → 224 px) | vs JPEG | CPU ms per photo | vs JPEG | file size |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for fmt, t in best.items():
        c = cpu[fmt]
        print(
            f"| {fmt} | {1000 * t:.1f} | {t / best['JPEG']:.1f}× | {1000 * c:.1f} | "
            f"{c / cpu['JPEG']:.1f}× | {kb[fmt]:,.0f} kB |"
        )
    total, parts = light_install_mb()
    big = sorted(parts.items(), key=lambda kv: -kv[1])[:6]
    print(
        f"\nlight install: {total:.0f} MB on disk ({len(parts)} distributions); largest: "
        + ", ".join(f"{n} {mb:.0f} MB" for n, mb in big)
    )
    for name in ("pillow-heif", "rawpy"):
        print(f"  {name}: {parts.get(name, 0):.1f} MB")


if __name__ == "__main__":
    main()
