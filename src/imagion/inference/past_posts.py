"""A scored post of the account a photo is compared with (leaf: imported by rank and history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from imagion.scores import JSON_DIGITS


@dataclass(frozen=True)
class PastPost:
    """A scored post of the account, and how similar it is to the photo (cosine, −1…1)."""

    account: str
    post_id: str
    posted_at: int | None  # Unix time (None: the catalog does not know)
    score: float
    similarity: float
    image: str

    @property
    def date(self) -> str:
        """'12 May 2023' (or 'an unknown date')."""
        if self.posted_at is None:
            return "an unknown date"
        d = dt.datetime.fromtimestamp(self.posted_at, dt.UTC)
        return f"{d.day} {d:%b %Y}"

    def to_dict(self) -> dict[str, Any]:
        when = None
        if self.posted_at is not None:
            when = dt.datetime.fromtimestamp(self.posted_at, dt.UTC).isoformat()
        return {
            "account": self.account,
            "post_id": self.post_id,
            "posted_at": when,
            "score": round(self.score, JSON_DIGITS),
            "similarity": round(self.similarity, 3),
            "image": self.image,
        }
