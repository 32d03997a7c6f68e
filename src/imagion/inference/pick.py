"""`imagion pick`: the n photos a person would post from a shoot — the best photo of each of the
n best groups of near-duplicates, never two of one moment, each with how sure the model is that
it beats the runner-up of its group (and "a toss-up" where it cannot tell)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagion.choices import count
from imagion.inference.groups import SIMILARITY, Group, GroupResult, ShotsHook, group_images
from imagion.inference.quality import QUALITY_COLUMNS
from imagion.inference.rank import Ranked
from imagion.progress import Progress

_PHOTO_FIELDS = ("path", "score", "score_low", "score_high", "raw")
# `pick --csv`: the flat fields of `pick --json` (the runners-up "; "-joined in one cell)
PICK_CSV = ["pick", *_PHOTO_FIELDS, "group", "group_size", "p_beats_runner_up", "toss_up"]
PICK_CSV += ["verdict", "chosen_for", "runners_up", *QUALITY_COLUMNS, "flags"]

PAST = ("similar_posts", "already_posted")  # with a history, as rank shows them


@dataclass
class Pick:
    """One photo to post: the best of its group."""

    place: int  # 1 = the first photo to post
    group: Group
    calibrated: bool = True  # the model has a held-out calibration (else no probability)

    @property
    def photo(self) -> Ranked:
        return self.group.best

    @property
    def text(self) -> str:
        return self.group.verdict(self.calibrated)

    def to_dict(self) -> dict[str, Any]:
        """`pick --json` and `/api/pick`'s picks; `pick --csv` writes its PICK_CSV fields."""
        g = self.group
        p = None if g.p_beats_next is None else round(g.p_beats_next, 3)
        photo = self.photo.to_dict()  # the score (and its 80% range) as every output writes it
        return {
            "pick": self.place,
            **{k: v for k, v in photo.items() if k in _PHOTO_FIELDS},
            "group": g.number,
            "group_size": len(g),
            "p_beats_runner_up": p,
            "toss_up": g.even if g.even > 1 else None,
            "verdict": self.text,
            "chosen_for": g.chosen_for,
            "quality": None if self.photo.quality is None else self.photo.quality.to_dict(),
            "runners_up": [str(r.path) for r in g.runners_up],
        } | {k: v for k, v in self.photo.to_dict().items() if k in PAST}


@dataclass
class PickResult:
    """The photos to post, best first, and the grouping they were picked from."""

    picks: list[Pick]
    grouping: GroupResult
    asked: int
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, k: int) -> Pick:
        return self.picks[k]

    def __iter__(self) -> Iterator[Pick]:
        return iter(self.picks)

    @property
    def problems(self) -> list[str]:
        return self.grouping.problems

    def to_list(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.picks]


PICK_N = 5  # photos picked when `n` is not given (the CLI, the page and the API say it)


def check_n(n: int) -> int:
    return count(n, "n", "pick at least 1 photo.")


def choose(grouping: GroupResult, n: int) -> PickResult:
    """The best photo of each of the `n` best groups (the groups are ordered by their best)."""
    check_n(n)
    calibrated = grouping.calibrated_on is not None
    picks = [Pick(k + 1, g, calibrated) for k, g in enumerate(grouping.groups[:n])]
    notes = []
    if len(grouping.groups) < n:
        notes.append(
            f"only {len(grouping.groups)} distinct moment(s) among {grouping.photos} photos: "
            f"{len(picks)} picked, not {n}."
        )
    if not grouping.by_features:
        notes.append(
            "this model gives no pooled features, so only re-saved copies were grouped; "
            "near-duplicates may be picked together."
        )
    return PickResult(picks, grouping, n, notes)


def pick_images(
    paths: Sequence[str | Path],
    n: int = PICK_N,
    *,
    similarity: float = SIMILARITY,
    model: str | Path | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    stats: Path | None = None,
    index: str | Path | bool | None = None,
    with_shots: ShotsHook | None = None,
) -> PickResult:
    """The `n` photos to post from those under `paths`: the best of the `n` best groups of
    near-duplicates (`similarity` as in `group`), each with P(it beats its group's runner-up);
    `index`: the photo index (None: the default one; a path; False: none)."""
    check_n(n)
    grouping = group_images(
        paths,
        similarity=similarity,
        model=model,
        recursive=recursive,
        batch_size=batch_size,
        device=device,
        progress=progress,
        suggest=False,
        stats=stats,
        index=index,
        with_shots=with_shots,
    )
    return choose(grouping, n)


def pick_table(
    table: str | Path,
    n: int = 5,
    *,
    similarity: float = SIMILARITY,
    model: str | Path | None = None,
    device: str = "auto",
    progress: Progress | None = None,
) -> PickResult:
    """The `n` photos to post from a `rank --engine ray --features` table, without scoring them
    again (`model`: the model that wrote the table)."""
    from imagion.inference.from_table import group_table  # pyarrow, only for a table

    check_n(n)
    grouping = group_table(
        table, similarity=similarity, model=model, device=device, progress=progress, suggest=False
    )
    return choose(grouping, n)
