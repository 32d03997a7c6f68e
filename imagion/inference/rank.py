"""`imagion rank` and `imagion compare`: score local image files 0–10, best first."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imagion.errors import ImagionError
from imagion.images import find_images
from imagion.inference.decode import run_files
from imagion.inference.engine import Engine, open_engine
from imagion.labels.suggestions import Suggestion


@dataclass
class Ranked:
    path: Path
    score: float
    raw: float
    labels: list[str] = field(default_factory=list)
    suggestion: Suggestion | None = None


@dataclass
class RankResult:
    items: list[Ranked]
    problems: list[str] = field(default_factory=list)
    model: str = ""
    arch: str = ""

    def to_list(self) -> list[dict]:
        rows = []
        for k, r in enumerate(self.items):
            row = {"rank": k + 1, "path": str(r.path), "score": round(r.score, 3), "raw": r.raw}
            if r.suggestion is not None:
                row |= {
                    "labels": r.labels,
                    "suggestion": r.suggestion.text,
                    "suggest_labels": r.suggestion.add,
                }
            rows.append(row)
        return rows


def score_files(
    engine: Engine,
    files: list[Path],
    *,
    batch_size: int | None = None,
    suggest: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Ranked], list[str]]:
    """Scores (best first) of image files, and the files that failed.

    With `suggest` and an EfficientNet-Lite0 model, each image also gets offline ImageNet labels
    (from the same forward pass) and the suggestion built from the bundled label statistics.
    """
    want = suggest and engine.labeler is not None
    done, raw, feats, bad = run_files(
        files, engine.preprocess.size, lambda batch: engine.forward(batch, want),
        batch_size or engine.batch_size, progress,
    )  # fmt: skip
    scores = engine.calibration.score(raw)
    items = [Ranked(p, float(s), float(r)) for p, s, r in zip(done, scores, raw, strict=True)]
    if want and feats is not None:
        from imagion.labels.suggestions import load_bundled_stats
        from imagion.labels.suggestions import suggest as make_suggestion

        stats = load_bundled_stats()
        for item, lab in zip(items, engine.labeler.from_features(feats), strict=True):
            item.labels = [name for name, _ in lab]
            item.suggestion = make_suggestion(item.labels, item.score, stats)
    items.sort(key=lambda r: (-r.raw, str(r.path)))
    return items, bad


def rank_images(
    paths: list[str | Path],
    *,
    model: str | Path | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    suggest: bool = True,
) -> RankResult:
    """Score every image under `paths` (files, folders, globs); unreadable files are reported."""
    files, problems = find_images(list(paths), recursive=recursive)
    if not files:
        raise ImagionError("no image files found in " + ", ".join(map(str, paths)) + (
            " (folders are read one level deep; add -r to recurse)" if not recursive else ""))  # fmt: skip
    engine = open_engine(model, device)
    items, bad = score_files(
        engine, files, batch_size=batch_size, suggest=suggest, progress=progress
    )
    return RankResult(items, problems + bad, model=str(engine.path), arch=engine.arch)


def copy_top(result: RankResult, folder: Path, top: int | None) -> list[Path]:
    """Copy the best images, named `01_7.9_name.jpg` (rank, score, original name)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, r in enumerate(result.items[: top or None]):
        dest = folder / f"{k + 1:02d}_{r.score:.1f}_{r.path.name}"
        shutil.copy2(r.path, dest)
        written.append(dest)
    return written


@dataclass
class Comparison:
    a: Ranked
    b: Ranked
    p_a_wins: float

    @property
    def winner(self) -> Ranked:
        return self.a if self.p_a_wins >= 0.5 else self.b

    def to_dict(self) -> dict:
        def side(r: Ranked) -> dict:
            d = {"path": str(r.path), "score": round(r.score, 3)}
            if r.suggestion is not None:
                d |= {"labels": r.labels, "suggestion": r.suggestion.text}
            return d

        return {
            "a": side(self.a),
            "b": side(self.b),
            "winner": str(self.winner.path),
            "p_a_beats_b": round(self.p_a_wins, 4),
        }


def compare_images(
    a: Path, b: Path, *, model: str | Path | None = None, device: str = "auto"
) -> Comparison:
    """Which of two images will get more attention, and how sure the model is."""
    for p in (a, b):
        if not Path(p).is_file():
            raise ImagionError(f"{p}: no such file.")
    engine = open_engine(model, device)
    items, bad = score_files(engine, [Path(a), Path(b)], batch_size=2)
    if bad:
        raise ImagionError("; ".join(bad))
    by_path = {str(r.path): r for r in items}
    ra, rb = by_path[str(Path(a))], by_path.get(str(Path(b)), by_path[str(Path(a))])
    return Comparison(ra, rb, engine.calibration.win_probability(ra.raw, rb.raw))
