"""`imagion rank` and `imagion compare`: score local image files 0–10, best first."""

from __future__ import annotations

import itertools
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from imagion.choices import count
from imagion.errors import ImagionError, InputError, OptionError
from imagion.files import copy_into, regular_file
from imagion.images import as_paths, find_images, glob_root, is_glob, left_out_line
from imagion.inference.crops import best_crop, write_crop
from imagion.inference.engine import Engine, open_engine
from imagion.inference.neighbours import reporting
from imagion.inference.photo_index import PhotoIndex, opened_index, scored_pass
from imagion.inference.quality import QUALITY_COLUMNS, Quality
from imagion.labels.suggestions import Suggestion, suggest
from imagion.models.expected_score import NO_INTERVAL
from imagion.models.imagenet import SEEN_THRESHOLD
from imagion.problems import joined
from imagion.progress import Progress
from imagion.scores import JSON_DIGITS, TOSS_UP, odds_words, score_text

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from imagion.inference.crops import CropAdvice
    from imagion.inference.past_posts import PastPost

# (engine, files, batch_size, suggest, progress, photo index) → (items best first, failures,
# whose history)
Scored = Callable[
    [Engine, list[Path], int | None, bool, Progress | None, "PhotoIndex | None"],
    tuple[list["Ranked"], list[str], str],
]
ABOUT_EVEN = TOSS_UP  # a win probability below this is worded as a toss-up


class RankRow(TypedDict, total=False):
    """One scored image as `rank --json`, `compare --json` and the serve API show it."""

    rank: int
    path: str
    score: float
    score_low: float
    score_high: float
    raw: float
    labels: list[str]
    suggestion: str
    suggest_labels: list[str]
    avoid_labels: list[str]
    p_beats_next: float
    crop: dict[str, object]
    group: int  # rank --groups: the photo's group of near-duplicates (1 = the best photo's)
    best_in_group: bool
    group_size: int  # on a group's best only
    p_beats_runner_up: float  # on a group's best only: P(it beats the group's second best)
    quality: dict[str, object]  # measured technical quality and its flags (inference/quality.py)
    chosen_for: str  # rank --groups, a group's best: why it leads its group
    similar_posts: list[dict[str, object]]  # with a history: the account's most similar posts
    already_posted: dict[str, object]  # with a history: the post this photo is a near-copy of


# `rank --csv`: the JSON rows' flat fields (a list in one cell, "; "-joined; the crop is JSON only)
RANK_CSV = ["rank", "path", "score", "score_low", "score_high", "raw", "p_beats_next"]
RANK_CSV += ["labels", "suggestion", "suggest_labels", "avoid_labels", *QUALITY_COLUMNS, "flags"]


@dataclass
class Ranked:
    path: Path
    score: float  # the expected 0–10 score (the percentile without held-out predictions)
    raw: float
    low: float | None = None  # its 80% interval (None: the model has no held-out predictions)
    high: float | None = None
    labels: list[str] = field(default_factory=list)
    suggestion: Suggestion | None = None
    p_beats_next: float | None = None  # P(this one gets more likes than the next one down)
    crop: CropAdvice | None = None  # a crop likely (≥ MIN_WIN) to do better, if any
    quality: Quality | None = None  # measured technical quality (None: not measured)
    similar_posts: list[PastPost] | None = None  # with a history: the most similar past posts
    already_posted: PastPost | None = None  # with a history: the post it is a near-copy of

    def to_dict(self, rank: int | None = None) -> RankRow:
        """The one way a scored image becomes JSON."""
        row = RankRow(path=str(self.path), score=round(self.score, JSON_DIGITS))
        if self.low is not None and self.high is not None:
            row["score_low"] = round(self.low, JSON_DIGITS)
            row["score_high"] = round(self.high, JSON_DIGITS)
        row["raw"] = self.raw
        if self.p_beats_next is not None:
            row["p_beats_next"] = round(self.p_beats_next, 3)
        if self.crop is not None:
            row["crop"] = self.crop.to_dict()
        if self.quality is not None:
            row["quality"] = self.quality.to_dict()
        if rank is not None:
            row = RankRow(rank=rank) | row
        if self.suggestion is not None:
            row["labels"] = self.labels
            row["suggestion"] = self.suggestion.text
            row["suggest_labels"] = self.suggestion.add
            row["avoid_labels"] = self.suggestion.avoid
        if self.similar_posts is not None:
            row["similar_posts"] = [p.to_dict() for p in self.similar_posts]
        if self.already_posted is not None:
            row["already_posted"] = self.already_posted.to_dict()
        return row


@dataclass
class RankResult:
    items: list[Ranked]
    problems: list[str] = field(default_factory=list)
    model: str = ""
    arch: str = ""
    uncalibrated: bool = False  # the checkpoint has no calibration: scores are raw outputs
    crops_written: list[Path] = field(default_factory=list)
    no_interval: str | None = None  # why the scores have no interval, when they have none
    scored: int = 0  # images scored, of which `items` holds the best `top` (or all)
    off_centre: str | None = None  # why a photo at the model's middle does not show 5, if so
    history_account: str | None = None  # whose past posts `similar_posts` come from

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> Ranked:
        """The k-th best image (0 = the best)."""
        return self.items[k]

    def __iter__(self) -> Iterator[Ranked]:
        return iter(self.items)

    def to_list(self) -> list[RankRow]:
        return [r.to_dict(rank=k + 1) for k, r in enumerate(self.items)]


def ranked(
    engine: Engine,
    paths: list[Path],
    raw: np.ndarray,
    feats: np.ndarray | None,
    qualities: list[Quality] | None = None,
) -> list[Ranked]:
    """Scored images, best first, from the engine's raw outputs; with pooled features, also the
    labels seen and the suggestion from the engine's label statistics. Each item but the last
    says how likely it beats the next one down (when the model's probability is calibrated).
    `qualities` (row k for `paths[k]`): each photo's measured technical quality."""
    cal = engine.calibration
    scores, band = cal.score(raw), cal.interval(raw)
    items = [Ranked(p, float(s), float(r)) for p, s, r in zip(paths, scores, raw, strict=True)]
    for item, q in zip(items, qualities or [], strict=False):
        item.quality = q
    if band is not None:
        for item, lo, hi in zip(items, *band, strict=True):
            item.low, item.high = float(lo), float(hi)
    if feats is not None and engine.labeler is not None:
        for item, lab in zip(items, engine.labeler.from_features(feats), strict=True):
            item.labels = [name for name, p in lab if p >= SEEN_THRESHOLD]
            found = [name for name, _ in lab]
            item.suggestion = suggest(found, item.score, engine.label_stats, item.labels)
    items.sort(key=lambda r: (-r.raw, str(r.path)))
    for item, below in itertools.pairwise(items):
        item.p_beats_next = engine.calibration.win_probability(item.raw, below.raw)
    return items


def score_files(
    engine: Engine,
    files: list[Path],
    *,
    batch_size: int | None = None,
    suggest: bool = True,
    progress: Progress | None = None,
    index: str | Path | bool | None = None,
) -> tuple[list[Ranked], list[str]]:
    """Scores (best first) of image files, and the files that failed (decoded in threads while
    the model runs; an unchanged file's pass comes from the photo `index`: None the default
    one, a path, False none)."""
    with opened_index(index) as store:
        got = scored_pass(engine, files, batch_size, progress, store)
    want = suggest and engine.labeler is not None
    with reporting(progress):  # the near-copy flag may look for candidate pairs
        qualities = got.qualities()
    return ranked(
        engine, got.paths, got.raw, got.features if want else None, qualities
    ), got.problems


def rank_images(
    paths: Sequence[str | Path],
    *,
    model: str | Path | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    suggest: bool = True,
    stats: Path | None = None,
    crops: Path | None = None,
    top: int | None = None,
    index: str | Path | bool | None = None,
    scorer: Scored | None = None,
) -> RankResult:
    """Score every image under `paths` (files, folders, globs); unreadable files are reported.
    `index`: the photo index (None: the default one under the cache folder; a path; False:
    none). `scorer`: scores with more than the model (inference/history.py `history_scorer`:
    each image's most similar past posts and the post it is a near-copy of)."""
    check_top(top)  # before the scoring, not after it
    files, problems = files_to_score(paths, recursive, batch_size)
    engine = open_engine(model, device, stats=stats)
    account = None
    if scorer is not None:
        with opened_index(index) as store:
            items, bad, account = scorer(engine, files, batch_size, suggest, progress, store)
    else:
        items, bad = score_files(
            engine, files, batch_size=batch_size, suggest=suggest, progress=progress, index=index
        )
    if not items:
        raise InputError(
            "no image could be scored: " + joined(bad[:3]) + (" …" if len(bad) > 3 else "")
        )
    written = advise_crops(engine, items[: top or None], crops) if crops is not None else []
    return RankResult(
        items[: top or None],
        problems + bad,
        model=str(engine.path),
        arch=engine.arch,
        uncalibrated=engine.calibration.missing,
        crops_written=written,
        no_interval=no_interval(engine),
        scored=len(items),
        off_centre=off_centre(engine),
        history_account=account,
    )


def check_top(top: int | None) -> None:
    """`top`: a whole number of images, 1 or more, or None for all."""
    if top is not None:
        count(top, "top", "keep at least 1 image (or leave `top` out for all).")


def no_interval(engine: Engine) -> str | None:
    """Why the engine's scores come without an interval (None when they have one)."""
    cal = engine.calibration
    if cal.missing:
        return None  # said louder: no calibration at all
    return NO_INTERVAL if cal.expected is None else None


def _has_subfolder(path: Path) -> bool:
    try:
        return path.is_dir() and any(child.is_dir() for child in path.iterdir())
    except OSError:
        return False


OFF_CENTRE = 0.3  # a model whose middle shows further than this from 5 says why


def off_centre(engine: Engine) -> str | None:
    """Why a photo at the middle of the model's training outputs does not show 5 (a typical
    post), when it is more than OFF_CENTRE away; None when it does (or has no expected score)."""
    exp = engine.calibration.expected
    if exp is None or engine.calibration.missing:
        return None
    middle = float(exp.predict(np.array([0.5]))[0][0])
    if abs(middle - 5.0) <= OFF_CENTRE:
        return None
    side = "below" if middle < 5 else "above"
    return (
        f"A photo in the middle of this model's range shows {middle:.1f}, not 5: the held-out "
        f"posts its scores were fitted on scored {side} their account's typical post there (newer "
        "posts whose likes were still coming do), so compare the photos with each other rather "
        "than with 5."
    )


def files_to_score(
    paths: Sequence[str | Path], recursive: bool, batch_size: int | None
) -> tuple[list[Path], list[str]]:
    """The image files under `paths` and the problems met finding them; ImagionError when
    there is none."""
    if batch_size is not None and batch_size < 1:
        raise OptionError("batch_size", batch_size, "use at least 1 image per forward pass.")
    paths = as_paths(paths)
    if not paths:
        raise OptionError("paths", paths, "give at least one file, folder or glob.")
    left_out: Counter[str] = Counter()
    files, problems = find_images(paths, recursive=recursive, left_out=left_out)
    if not files:
        if problems:  # every argument was missing or unreadable: say that, not something else
            raise InputError(joined(problems[:3]) + (" …" if len(problems) > 3 else ""))
        deeper = not recursive and any(_has_subfolder(Path(p)) for p in paths)
        raise InputError(
            "no image files found in "
            + ", ".join(map(str, paths))
            + (f"; {left_out_line(left_out)}" if left_out else "")
            + (" (folders are read one level deep; add -r to recurse)" if deeper else "")
        )
    if left_out:
        log.info(left_out_line(left_out))
    return files, problems


def advise_crops(engine: Engine, items: list[Ranked], folder: Path | None = None) -> list[Path]:
    """Crop advice for each item (and the recommended crops written to `folder`); returns the
    files written."""
    written = []
    for item in items:
        try:
            item.crop, crop = best_crop(engine, item.path)
        except ImagionError:
            continue
        if folder is not None:
            path = write_crop(folder, item.path, item.crop, crop)
            written += [path] if path else []
    return written


def check_output_folders(
    inputs: Sequence[str | Path], recursive: bool, folders: dict[str, Path | None]
) -> None:
    """An output folder (`--copy-to`, `--crops`) must not be one the photos are ranked from: the
    next run would rank the copies too (and copy them again)."""
    for option, folder in folders.items():
        if folder is None:
            continue
        out = folder.resolve()
        for raw in inputs:
            src, deep = _reach(Path(raw), recursive)
            if out == src or (deep and src in out.parents):
                raise InputError(
                    f"{option} {folder}: the photos are ranked from this folder, so its copies "
                    "would be ranked (and copied) again next time; choose another folder."
                )


def _reach(p: Path, recursive: bool) -> tuple[Path, bool]:
    """The folder an input reads from, and whether it reads the folders under it too: a
    folder with -r, a glob with `**` or a wildcard before its last part (`dir/*/x.jpg`)."""
    if p.is_dir():
        return p.resolve(), recursive
    if is_glob(p):
        root, rest = glob_root(str(p))
        return root.resolve(), "/" in rest or "**" in rest
    return p.resolve().parent, False


def copy_top(result: RankResult, folder: Path, top: int | None) -> list[Path]:
    """Copy the best images, named `01_7.9_name.jpg` (rank, score, original name); a name that
    is taken gets ` (2)`: no file in `folder` is ever replaced."""
    return copy_ranked(result.items[: top or None], folder)


def copy_ranked(items: list[Ranked], folder: Path) -> list[Path]:
    """Copy `items` in their order, named `01_7.9_name.jpg` (place, score, original name); a
    name that is taken gets ` (2)`: no file in `folder` is ever replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        copy_into(r.path, folder, f"{k + 1:02d}_{score_text(r.score)}_{r.path.name}", "copy_to")
        for k, r in enumerate(items)
    ]


@dataclass
class Comparison:
    a: Ranked
    b: Ranked
    p_a_wins: float | None  # None: the model has no held-out calibration
    calibration: str | None = None  # where the probability was fitted
    model: str = ""
    uncalibrated: bool = False  # the checkpoint has no calibration: scores are raw outputs
    no_interval: str | None = None  # why the scores have no interval, when they have none

    @property
    def winner(self) -> Ranked:
        return self.a if self.a.raw >= self.b.raw else self.b

    @property
    def toss_up(self) -> bool:
        """The calibrated probability cannot tell the two apart (below TOSS_UP either way)."""
        return self.p_a_wins is not None and max(self.p_a_wins, 1 - self.p_a_wins) < TOSS_UP

    def verdict(self) -> str:
        """The answer worded by how sure the calibrated probability is (`odds_words`): 52% is a
        toss-up, not "should get more attention"."""
        name = self.winner.path.name
        if self.p_a_wins is None:
            return f"{name} scores higher (how likely it does better is unknown for this model)"
        p = max(self.p_a_wins, 1 - self.p_a_wins)
        if self.toss_up:
            return f"a toss-up ({p:.0%} for {name})"
        return f"{name} is {odds_words(p)} to get more likes ({p:.0%})"

    def to_dict(self) -> dict[str, Any]:
        p = None if self.p_a_wins is None else round(self.p_a_wins, 4)
        return {
            "a": self.a.to_dict(),
            "no_interval": self.no_interval,
            "b": self.b.to_dict(),
            "winner": str(self.winner.path),
            "verdict": self.verdict(),
            "p_a_beats_b": p,
            "calibrated_on": self.calibration,
        }


def compare_images(
    a: Path,
    b: Path,
    *,
    model: str | Path | None = None,
    device: str = "auto",
    stats: Path | None = None,
    index: str | Path | bool | None = None,
    scorer: Scored | None = None,
) -> Comparison:
    """Which of two images will get more attention, and how sure the model is (`index` as in
    `rank_images`)."""
    for p in (a, b):
        regular_file(p)  # a folder is said to be one (rank reads folders), not "no such file"
    if os.path.samefile(a, b):  # the same name twice, or a link to the other
        raise InputError(f"{a} and {b} are the same file: give two different photos to compare.")
    engine = open_engine(model, device, stats=stats)
    if scorer is not None:
        with opened_index(index) as store:
            items, bad, _ = scorer(engine, [Path(a), Path(b)], 2, True, None, store)
    else:
        items, bad = score_files(engine, [Path(a), Path(b)], batch_size=2, index=index)
    if bad:
        raise InputError(joined(bad))
    advise_crops(engine, items)
    by_path = {str(r.path): r for r in items}
    ra, rb = by_path[str(Path(a))], by_path.get(str(Path(b)), by_path[str(Path(a))])
    cal = engine.calibration
    win = cal.win_probability(ra.raw, rb.raw)
    why = no_interval(engine)
    return Comparison(ra, rb, win, cal.pair_source, str(engine.path), cal.missing, why)
