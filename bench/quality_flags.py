"""Technical-quality flags on real photos with generated degradations, pick on the same sets, the
cost of measuring, and distinct shown scores (issue #34; figures in docs/quality.md).

20 real photos of ig-celeb12 (2 of each of 10 accounts), each with 5 copies: blurred (Gaussian,
radius = short side / 300), darkened to 40%, brightened 1.7× (clipped highlights), re-saved at
JPEG quality 40, halved in size. The copies other than the re-save are saved at quality 95.
Prints each measure's spread on the originals and on the copies it is meant to catch, the share
of the copies flagged with the right flag and of the originals flagged at all, what `pick -n 20`
returns for each moment, the share of rank's time spent measuring quality (all 120 ig-celeb12 photos and their 5
copies each, 720 photos, with and without measuring, interleaved), whether 48 ordinary photos
show distinct scores to 4 decimals, the sharpness of all 120 photos against a blurred copy of
each, and the flags of the 120 in one run. With --instagram N, the flags of N instagram-2017
posts (299 px: all are "low resolution", the other flags are counted).

Usage: python bench/quality_flags.py [--datasets /work/shared/datasets] [--instagram 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _datasets import add_datasets_option  # noqa: E402 (bench/, the script's folder)

import imagion.inference.quality as quality  # noqa: E402
from imagion.errors import ImagionError  # noqa: E402
from imagion.inference.highlights import no_thumbnails  # noqa: E402
from imagion.inference.pick import pick_images  # noqa: E402
from imagion.inference.rank import rank_images  # noqa: E402

RUNS = 7  # timed runs of rank of 720 photos with and without measuring, interleaved

KINDS = {
    "blurred": "blurry",
    "darkened": "too dark",
    "clipped": "highlights clipped",
    "resaved": "heavily compressed",
    "halved": "low resolution",
}


def degrade(im: Image.Image, kind: str) -> tuple[Image.Image, int]:
    """The copy and the JPEG quality it is saved at."""
    if kind == "blurred":
        return im.filter(ImageFilter.GaussianBlur(min(im.size) / 300)), 95
    if kind == "darkened":
        return ImageEnhance.Brightness(im).enhance(0.4), 95
    if kind == "clipped":
        return ImageEnhance.Brightness(im).enhance(1.7), 95
    if kind == "resaved":
        return im, 40
    if kind == "halved":
        return im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), 95
    raise ValueError(kind)


def blur_check(datasets: Path) -> dict[str, str]:
    """Sharpness of every ig-celeb12 photo and of a blurred copy of each (as in `degrade`):
    how many of each fall below BLURRY, and below a few other thresholds."""
    import io

    from imagion.images import load_square

    orig, blur = [], []
    for f in sorted((datasets / "ig-celeb12").glob("*/*.jpg")):
        orig.append(load_square(f, 224))
        with Image.open(f) as im:
            copy, q = degrade(im.convert("RGB"), "blurred")
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=q)
        blur.append(load_square(buf.getvalue(), 224, name="copy.jpg"))
    so = quality.pixel_measures(np.stack(orig))[:, 0]
    sb = quality.pixel_measures(np.stack(blur))[:, 0]
    out = {}
    for t in sorted({0.95, 1.0, 1.05, 1.12, quality.BLURRY}):
        mark = " (BLURRY)" if t == quality.BLURRY else ""
        print(
            f"sharpness below {t:g}{mark}: {(so < t).sum()}/{len(so)} ig-celeb12 photos, "
            f"{(sb < t).sum()}/{len(sb)} of their blurred copies"
        )
        out[f"below_{t:g}"] = (
            f"originals {(so < t).sum()}/{len(so)}, blurred {(sb < t).sum()}/{len(sb)}"
        )
    return out


def sources(datasets: Path, n_accounts: int = 10, per: int = 2) -> list[Path]:
    accounts = sorted(p for p in (datasets / "ig-celeb12").iterdir() if p.is_dir())
    out = []
    for a in accounts[:n_accounts]:
        out += sorted(a.glob("*.jpg"))[:per]
    return out


def write_sets(photos: list[Path], folder: Path) -> None:
    for k, src in enumerate(photos):
        with Image.open(src) as im:
            rgb = im.convert("RGB")
        (folder / f"m{k:02d}_original.jpg").write_bytes(src.read_bytes())  # byte for byte
        for kind in KINDS:
            copy, q = degrade(rgb, kind)
            copy.save(folder / f"m{k:02d}_{kind}.jpg", quality=q)


def spread(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return (
        f"min {a.min():.3f} · p5 {np.quantile(a, 0.05):.3f} · median {np.median(a):.3f} · "
        f"p95 {np.quantile(a, 0.95):.3f} · max {a.max():.3f}"
    )


def time_measuring(folder: Path) -> dict[str, float]:
    """`rank` of the photos in `folder` with and without measuring quality (the pixel measures,
    the block thumbnails and their comparison, the header facts), interleaved: the share of the
    time measuring takes, from the fastest run of each and as the median of the
    rounds' shares."""
    rank_images([folder], suggest=False, index=False)  # warm: the model loaded, files cached
    real = (quality.measures_and_thumbnails, quality.header_facts)

    def no_pixels(batch):  # type: ignore[no-untyped-def]
        return np.zeros((len(batch), quality.PIXEL_MEASURES)), no_thumbnails(len(batch))

    def no_header(*a, **k):  # type: ignore[no-untyped-def]
        raise ImagionError("not measured")

    best = {"with": (np.inf, np.inf), "without": (np.inf, np.inf)}
    rounds = []  # each round's (wall, CPU) share of measuring
    for _ in range(RUNS):
        took = {}
        for kind in ("without", "with"):
            if kind == "without":
                quality.measures_and_thumbnails, quality.header_facts = no_pixels, no_header  # type: ignore[assignment]
            t, c = time.perf_counter(), time.process_time()
            n = len(rank_images([folder], suggest=False, index=False))
            took[kind] = (time.perf_counter() - t, time.process_time() - c)
            quality.measures_and_thumbnails, quality.header_facts = real  # type: ignore[assignment]
            best[kind] = (min(best[kind][0], took[kind][0]), min(best[kind][1], took[kind][1]))
        rounds.append([(w - b) / w for w, b in zip(took["with"], took["without"], strict=True)])
    (total, cpu), (bare, bare_cpu) = best["with"], best["without"]
    share, cpu_share = (total - bare) / total, (cpu - bare_cpu) / cpu
    mid_wall, mid_cpu = (float(v) for v in np.median(np.asarray(rounds), axis=0))
    print(
        f"rank of {n} photos: {total:.2f} s wall, {cpu:.2f} s CPU with quality, {bare:.2f} s and "
        f"{bare_cpu:.2f} s without: measuring quality costs {share:.1%} of the wall time, "
        f"{cpu_share:.1%} of the CPU time (fastest of {RUNS}, interleaved); median of the "
        f"{RUNS} rounds' shares: {mid_wall:.1%} wall, {mid_cpu:.1%} CPU"
    )
    return {
        "quality_share_of_rank_wall": round(share, 4),
        "quality_share_of_rank_cpu": round(cpu_share, 4),
        "quality_share_of_rank_wall_median_round": round(mid_wall, 4),
        "quality_share_of_rank_cpu_median_round": round(mid_cpu, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    add_datasets_option(ap)
    ap.add_argument("--instagram", type=int, default=300)
    args = ap.parse_args()
    photos = sources(args.datasets)
    figures: dict[str, object] = {}
    counts: dict[str, int]
    with tempfile.TemporaryDirectory() as tmp:
        folder, timed = Path(tmp) / "sets", Path(tmp) / "timed"
        folder.mkdir()
        timed.mkdir()
        write_sets(photos, folder)
        write_sets(sources(args.datasets, 12, 10), timed)  # every photo and its 5 copies: 720
        figures.update(time_measuring(timed))
        rows = rank_images([folder], suggest=False, index=False).to_list()
        by_kind: dict[str, list[dict]] = {}
        for r in rows:
            kind = Path(r["path"]).stem.split("_", 1)[1]
            by_kind.setdefault(kind, []).append(r["quality"])  # type: ignore[arg-type]
        for key in ("sharpness", "brightness", "bright_top", "clipped", "jpeg_quality"):
            for kind in ("original", *KINDS):
                vals = [q[key] for q in by_kind[kind] if q[key] is not None]
                print(f"{key:>12} {kind:>9}: {spread(vals)}")
        orig_flagged = [q["flags"] for q in by_kind["original"] if q["flags"]]
        figures["originals_flagged"] = f"{len(orig_flagged)}/{len(by_kind['original'])}"
        print("originals flagged:", figures["originals_flagged"], orig_flagged)
        right = 0
        for kind, flag in KINDS.items():
            hit = sum(flag in q["flags"] for q in by_kind[kind])
            right += hit
            figures[f"{kind}_flagged_{flag}"] = f"{hit}/{len(by_kind[kind])}"
            print(f"{kind}: {hit}/{len(by_kind[kind])} flagged {flag!r}")
        figures["degraded_right_flag"] = f"{right}/{sum(len(by_kind[k]) for k in KINDS)}"
        picked = pick_images([folder], n=20)
        wins = [Path(p.photo.path).stem.split("_", 1)[1] for p in picked]
        groups = len(picked.grouping.groups)
        figures["pick_original"] = f"{wins.count('original')}/{len(photos)}"
        figures["pick_groups"] = groups
        print(
            f"pick -n 20: {groups} groups; originals picked {wins.count('original')}/{len(photos)}:",
            wins,
        )
        for p in picked:
            if not Path(p.photo.path).stem.endswith("original"):
                print("  ", Path(p.photo.path).name, "—", p.text)
    # 48 ordinary photos: distinct raw outputs show distinct scores (4 decimals)
    ordinary = sorted((args.datasets / "ig-celeb12").glob("*/*.jpg"))[::2][:48]
    rows = rank_images(ordinary, suggest=False, index=False).to_list()
    raws = {r["raw"] for r in rows}
    shown = {r["score"] for r in rows}
    figures["ordinary_distinct_raw"] = len(raws)
    figures["ordinary_distinct_shown"] = len(shown)
    print(
        f"48 ordinary photos: {len(raws)} distinct raw outputs, {len(shown)} distinct shown scores"
    )
    figures["sharpness_all_igceleb12"] = blur_check(args.datasets)
    every = sorted((args.datasets / "ig-celeb12").glob("*/*.jpg"))
    rows = rank_images(every, suggest=False, index=False).to_list()
    counts = {}
    for r in rows:
        for f in r["quality"]["flags"]:  # type: ignore[index]
            counts[f] = counts.get(f, 0) + 1
    figures["igceleb12_flags"] = counts
    print(f"ig-celeb12, all {len(rows)} photos in one run: flags {counts}")
    if args.instagram:
        every = sorted((args.datasets / "instagram-2017").rglob("*.jpg"))
        files = every[:: max(1, len(every) // args.instagram)]
        rows = rank_images(files[: args.instagram], suggest=False, index=False).to_list()
        counts = {}
        for r in rows:
            for f in r["quality"]["flags"]:  # type: ignore[index]
                counts[f] = counts.get(f, 0) + 1
        figures["instagram2017_posts"] = len(rows)
        figures["instagram2017_flags"] = counts
        sharp = [r["quality"]["sharpness"] for r in rows]  # type: ignore[index]
        print(f"instagram-2017, {len(rows)} posts: flags {counts}; sharpness {spread(sharp)}")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
