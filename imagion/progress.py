"""The one way long work reports how far it is: `progress(done, total, stage, info)`.

Every library function that takes `progress=` calls it with the items done and the total, and
may name the stage ("features", "epoch 3/20") and add a short note ("loss 0.61 · 900 img/s").
A plain `lambda done, total, *_: …` is a valid callback; the command line draws a bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, stage: str = "", info: str = "") -> None: ...


def in_stage(progress: Progress | None, stage: str) -> Progress | None:
    """The same callback, with `stage` filled in for work that does not know its name."""
    if progress is None:
        return None
    report, name = progress, stage

    def staged(done: int, total: int, stage: str = "", info: str = "") -> None:
        report(done, total, name, info)

    return staged
