"""Problem lines, bounded: a broken export can hold 450,000 missing images, and a person reads
the first few. `ProblemLog` keeps the first `cap` lines and counts the rest; `collapse` merges
identical lines (one moved zip behind 107 images is one line, with its count)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable

MAX_PROBLEMS_KEPT = 50


class ProblemLog(list[str]):
    """A list of problem lines that keeps the first `cap` − TAIL and the last TAIL (a summary
    said at the end survives), and counts every one (`total`)."""

    TAIL = 10

    def __init__(self, lines: Iterable[str] = (), cap: int = MAX_PROBLEMS_KEPT) -> None:
        super().__init__()
        self.cap, self.total = cap, 0
        self.tail: deque[str] = deque(maxlen=min(self.TAIL, cap // 2))
        self.extend(lines)

    def append(self, line: str) -> None:
        self.total += 1
        if len(self) < self.cap - (self.tail.maxlen or 0):
            super().append(line)
        else:
            self.tail.append(line)

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.append(line)

    @property
    def dropped(self) -> int:
        return self.total - len(self) - len(self.tail)

    def lines(self) -> list[str]:
        """The kept lines, with one saying how many were left out between the first and last."""
        more = f"… and {self.dropped:,} more problems like these (not listed)."
        return list(self) + ([more] if self.dropped else []) + list(self.tail)


def joined(sentences: Iterable[str]) -> str:
    """Sentences in one line, "a; b." (not "a.; b.")."""
    parts = [s.strip().rstrip(".") for s in sentences if s.strip()]
    return "; ".join(parts) + ("." if parts else "")


def collapse(lines: Iterable[str], cap: int = MAX_PROBLEMS_KEPT) -> list[str]:
    """Identical lines once each, with their count ("… (107 images)"), in first-seen order;
    at most `cap` lines and one saying how many more."""
    counts = Counter(lines)
    merged = [line if n == 1 else f"{line} ({n:,} images)" for line, n in counts.items()]
    log = ProblemLog(merged, cap=cap)
    return log.lines()
