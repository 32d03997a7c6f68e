"""Long work says where it is in a log line every 10% (or 1,000 items), through the `imagion`
logger: in a terminal or not, from the command line or from Python."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import imagion.cli  # noqa: F401  # as in a full run: the CLI's handler on `imagion`, no propagation
from imagion.progress import logged


@contextmanager
def _logged_lines() -> Iterator[list[str]]:
    """The messages of the `imagion.progress` logger while inside (whatever handlers the
    `imagion` logger has: the CLI stops it propagating to the root)."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("imagion.progress")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _lines(total: int) -> list[str]:
    seen: list[tuple[int, int]] = []
    report = logged(lambda done, total, *_: seen.append((done, total)), "features")
    with _logged_lines() as lines:
        for done in range(1, total + 1):
            report(done, total)
    assert len(seen) == total  # the callback still sees every step
    return lines


def test_a_line_every_tenth():
    lines = _lines(2500)
    assert len(lines) == 10
    assert lines[0].startswith("features: 250 of 2,500 (10%), ")
    assert lines[-1].startswith("features: 2,500 of 2,500 (100%)")


def test_a_line_every_thousand_items_of_large_work():
    lines = _lines(20_000)
    assert len(lines) == 20 and lines[0].startswith("features: 1,000 of 20,000 (5%)")


def test_small_work_logs_nothing():
    assert _lines(50) == []


def test_batches_that_jump_past_a_step_log_once_per_step():
    report = logged(None, "features")
    with _logged_lines() as lines:
        for done in (64, 128, 192, 256, 320, 1000):
            report(done, 1000)
    got = [line.split(" (")[0] for line in lines]
    assert got == [
        "features: 128 of 1,000",
        "features: 256 of 1,000",
        "features: 320 of 1,000",
        "features: 1,000 of 1,000",
    ]


def test_decoding_a_catalogs_images_logs_without_a_callback(tmp_path):
    from imagion.models.caches import load_images
    from tests.helpers import write_image

    paths = []
    for k in range(120):
        path = tmp_path / f"p{k}.png"
        write_image(path, k / 120, size=8, seed=k)
        paths.append(str(path))
    with _logged_lines() as lines:
        load_images(paths, [f"{k:064x}" for k in range(120)], 8, tmp_path / "cache")
    assert len(lines) == 10 and lines[-1].startswith("decoding: 120 of 120 (100%)")


def test_a_fold_of_a_large_crawl_is_one_short_line():
    from imagion.workflows.protocols import _named

    assert _named(["a", "b"]) == "a, b"
    assert _named([f"acct{k}" for k in range(146)]) == (
        "146 accounts (acct0, acct1, acct2, acct3, acct4, …)"
    )
