"""File names as people see them, in a terminal, a CSV or on a contact sheet: bytes that are not
UTF-8 (`caf\\xe9.jpg` on Linux) shown as `\\xe9` instead of crashing an encoder, control
characters and bidi overrides escaped so that they never reach a terminal raw, and names
shortened so that different names stay different."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence

_SURROGATE = re.compile(r"[\udc80-\udcff]")  # a byte that was not UTF-8 (surrogateescape)
_OTHER_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 (but tab and newline) and C1 controls, DEL, and the bidi controls (marks, embeddings,
# overrides, isolates) that make a name read backwards ("gpj.exe" shown as "exe.jpg")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE = re.compile(r"[\t\n]")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xDC00:02x}"
    return f"\\u{ord(c):04x}" if ord(c) > 0xFF else f"\\x{ord(c):02x}"


def visible(text: object) -> str:
    """`text` safe to show: undecodable bytes, control characters and bidi controls written as
    escapes (`\\xe9`, `\\x1b`, `\\u202e`); tabs and line breaks are kept (a message's lines)."""
    text = _SURROGATE.sub(_escape, str(text))
    return _CONTROL.sub(_escape, _OTHER_SURROGATE.sub(_escape, text))


def shown_name(name: object) -> str:
    """A file name on one line: as `visible`, with tabs and line breaks escaped too."""
    return _LINE.sub(_escape, visible(name))


def encodable(text: str) -> str:
    """`text` with each byte that was not UTF-8 written `\\xe9`: any UTF-8 writer takes it (a
    CSV, a page), where the raw surrogate would stop it."""
    return _SURROGATE.sub(_escape, _OTHER_SURROGATE.sub(_escape, text))


def shorten(name: str, width: int) -> str:
    """`name` in at most `width` characters: its start and end (the extension, a camera's last
    digits) with "…" between them, so that names that differ at the end stay apart."""
    if len(name) <= width:
        return name
    keep = max(width - 1, 2)
    tail = min(len(os.path.splitext(name)[1]) + 6, keep // 2)
    return _cut(name, keep - tail, tail)


def _cut(name: str, head: int, tail: int) -> str:
    return name[:head] + "…" + name[len(name) - tail :]


def _window(name: str, at: int, width: int) -> str:
    """`name` in `width` characters showing its start, the part from `at` on, and its end."""
    keep = max(width - 2, 3)
    head, tail = max(keep // 4, 1), max(keep // 4, 1)
    mid = keep - head - tail
    start = max(min(at - 1, len(name) - tail - mid), head)
    return name[:head] + "…" + name[start : start + mid] + "…" + name[len(name) - tail :]


def shorten_apart(names: Sequence[str], width: int) -> list[str]:
    """Each name shortened to `width` (as `shorten`), except where that would make different
    names look the same: those show the part where they differ (start…middle…end)."""
    shown = [shorten(n, width) for n in names]
    for _ in range(4):  # each pass tells apart at least the names differing at one place
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(shown):
            groups.setdefault(text, []).append(i)
        clashes = [g for g in groups.values() if len({names[i] for i in g}) > 1]
        if not clashes:
            break
        for g in clashes:
            fulls = sorted({names[i] for i in g})
            at = min(_differs_at(a, b) for a, b in itertools.pairwise(fulls))
            for i in g:
                shown[i] = _window(names[i], at, width)
    return shown


def _differs_at(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
