"""Byte budgets shared across threads: how many bytes of pixels are being decoded at once, one
mechanism for the command line (rank, pick, compare, featurize: `images.load_square`) and the
server (`serve.scorer`, with its own, smaller total)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

MB = 1024 * 1024
# Pixels being decoded at once by one process's decoder threads, all together. A 59-megapixel
# PNG takes ~530 MB at its peak (images.decoded_bytes), so with 16 decoder threads eight of them
# took 3.8 GB before; within this budget they decode one or two at a time (a JPEG meant for a
# 224-px input decodes at 1/8 scale and takes a few MB: photos still decode in parallel).
DECODE_BUDGET_BYTES = 768 * MB


class ByteBudget:
    """At most `total` bytes held at once across threads: a decode reserves what its pixels
    will take and waits while others hold the rest (one alone may take all of it), so eight
    threads decoding 59 MP PNGs, or eight clients sending 16-bit 16 MP PNGs, wait their turn
    instead of growing the process by GBs. `peak` is the most ever held at once."""

    def __init__(self, total: int) -> None:
        self.total, self.used, self.peak = total, 0, 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, n: int) -> Iterator[None]:
        n = max(0, min(n, self.total))
        with self._cond:
            self._cond.wait_for(lambda: self.used + n <= self.total)
            self.used += n
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                self._cond.notify_all()


# After a decode this large, freed pixels are handed back to the system: glibc keeps what a
# thread freed in that thread's arena, so 16 decoder threads taking turns each kept a 59 MP
# image's worth (2.0 GB for eight PNGs within a 768 MiB budget; 0.8 GB with one arena).
TRIM_BYTES = 64 * MB


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's malloc_trim, or None (another C library: nothing to do)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def give_back_freed() -> None:
    """Return the memory freed in every malloc arena to the system (glibc's malloc_trim; a
    few milliseconds, done only after decodes of TRIM_BYTES or more)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


DECODING = ByteBudget(DECODE_BUDGET_BYTES)  # the command line's decoders, every thread together
