"""Values read from posts on disk: counts and times checked, so one bad value costs one line.

Every function raises ValueError with the value and the reason; the importers turn that into a
refused row (likes, times) or an unknown field (comments, followers)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime


class NotFinite(ValueError):
    """A number that is NaN or infinite."""


class OutOfRange(ValueError):
    """A number outside what the field can hold (a broken value, not a different format)."""


HASHTAG = re.compile(r"#(\w+)", re.UNICODE)
MAX_COUNT = 10**12  # likes, comments, followers: more than this is a broken value
MAX_TIME = 4_102_444_800  # 2100-01-01: later Unix times are broken values
MS_RANGE = (100_000_000_000, MAX_TIME * 1000)  # Unix times in milliseconds (1973–2100)


def _number(value: object, name: str) -> float | int:
    """A finite number from JSON or CSV text; ValueError with the reason otherwise."""
    raw = value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} {raw!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise NotFinite(f"{name} {raw!r} is not a finite number")
    return value


def count_value(value: object, name: str, *, hidden: int | None = None) -> int | None:
    """A whole, non-negative count (likes, comments, followers); None when missing.

    `hidden` is the one negative value a format documents as "hidden" (instaloader's -1): it
    comes back as -1. Anything else fractional, negative or absurd raises ValueError."""
    if value is None or value == "":
        return None
    number = _number(value, name)
    if number != int(number):
        raise ValueError(f"{name} {value!r} is not a whole number")
    number = int(number)
    if hidden is not None and number == hidden:
        return -1
    if not 0 <= number <= MAX_COUNT:
        raise OutOfRange(f"{name} {value!r} is out of range (0 to {MAX_COUNT:,})")
    return number


def _basic_date(value: object, name: str = "posted_at") -> int | None:
    """An ISO 8601 basic date, 20200101 (8 digits, a real date from 1970 to 2099), as Unix
    seconds at midnight UTC; read as seconds it would be a day of 1970. Eight digits of a
    year 1970–2099 that are no real day are refused, not read as seconds."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    if len(text) != 8 or not text.isdigit() or not "1970" <= text[:4] <= "2099":
        return None
    try:
        return int(datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC).timestamp()) or None
    except ValueError:  # 20201340, 20200230: a date's shape, not a real date (nor a 1970 time)
        raise ValueError(f"{name} {value!r} is not a date (YYYYMMDD: no such day)") from None


def time_value(value: object, name: str = "posted_at") -> int | None:
    """Unix seconds from a number (seconds, or milliseconds: detected) or an ISO 8601 date.
    The epoch itself (0, 1970-01-01T00:00:00Z) is what crawlers write when they do not know
    the date (instagram-profilecrawl, the instagram-2017 manifest): it is None, unknown."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    basic = _basic_date(value, name)
    if basic is not None:
        return basic
    try:
        seconds = float(_number(value, name))
    except ValueError as exc:
        if not isinstance(value, str) or isinstance(exc, NotFinite):
            raise
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} {value!r} is not a date") from None
        seconds = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    else:
        if MS_RANGE[0] <= seconds < MS_RANGE[1]:
            seconds /= 1000.0  # milliseconds since 1970
    if not 0 <= seconds < MAX_TIME:
        raise OutOfRange(
            f"{name} {value!r} is out of range (1970 to 2100, in seconds or milliseconds)"
        )
    return int(seconds) or None


def optional_count(value: object, name: str, where: str, problems: list[str]) -> int | None:
    """A secondary count (comments, followers): -1 (hidden) is unknown; a bad value is reported
    and left empty."""
    try:
        number = count_value(value, name, hidden=-1)
        return None if number == -1 else number
    except ValueError as exc:
        problems.append(f"{where}: {exc}; stored as unknown.")
        return None


def tag_list(value: object) -> list[str]:
    """Hashtags from a list of tags or from one string of them ("#sun #sea", "sun, sea")."""
    if isinstance(value, str):
        items: list[object] = re.findall(r"[^\s,#]+", value)
    elif isinstance(value, list):
        items = value
    else:
        items = []
    return sorted({str(t).strip().lstrip("#").lower() for t in items if str(t).strip("# ")})


def hashtags(text: str | None) -> list[str]:
    return sorted({t.lower() for t in HASHTAG.findall(text or "")})
