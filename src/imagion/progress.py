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


def logged(
    progress: Progress | None, what: str, *, share: float = 0.1, most: int = 1000, least: int = 100
) -> Progress:
    """`progress`, plus an INFO line on the `imagion` logger every `share` of the work (10%)
    or every `most` items (1,000), whichever comes first ("features: 2,000 of 10,763 (19%),
    47/s"), so long work shows where it is in a terminal or not, from the command line or from
    Python (`logging.basicConfig(level=logging.INFO)`). Work of fewer than `least` items is
    over too soon to need it."""
    import logging
    import math
    import time

    log = logging.getLogger("imagion.progress")
    start = time.perf_counter()
    next_at: int | None = None  # the first step, once the total is known

    def report(done: int, total: int, stage: str = "", info: str = "") -> None:
        nonlocal next_at
        if progress is not None:
            progress(done, total, stage, info)
        step = max(1, min(math.ceil(total * share), most))
        if next_at is None:
            next_at = step
        if total < least or done < next_at:
            return
        next_at = (done // step + 1) * step
        rate = done / max(time.perf_counter() - start, 1e-9)
        log.info(f"{stage or what}: {done:,} of {total:,} ({done / total:.0%}), {rate:,.0f}/s")

    return report
