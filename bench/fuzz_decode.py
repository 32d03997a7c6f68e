"""A longer run of the decode fuzz (tests/test_damaged_images.py runs it for seconds): mutated
JPEG/PNG/GIF/WebP/TIFF files through opening, decoding, turning upright and the capture time.

    PYTHONPATH=. python bench/fuzz_decode.py [--seconds 600] [--seed 1] [--save escapes/]

Prints how many files were tried and every distinct exception that escaped (none expected);
--save writes each escaping file, to turn into a test."""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.damaged_images import fuzz
from tests.test_damaged_images import _paths


def main() -> int:
    warnings.simplefilter("ignore")  # Pillow warns on every damaged TIFF tag
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    tried, escapes = fuzz(_paths(), args.seed, args.seconds)
    distinct = {}
    for fmt, err, data in escapes:
        distinct.setdefault((fmt, err), data)
    print(f"{tried:,} files tried, {len(escapes)} escapes, {len(distinct)} distinct")
    for (fmt, err), data in distinct.items():
        print(f"  {fmt}: {err}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{hashlib.sha256(data).hexdigest()[:12]}.{fmt.lower()}").write_bytes(data)
    return 1 if distinct else 0


if __name__ == "__main__":
    sys.exit(main())
