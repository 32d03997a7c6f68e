"""The server's limits, in one place (README: "imagion serve")."""

from __future__ import annotations

from dataclasses import dataclass

from imagion.memory import MB, ByteBudget

__all__ = ["MB", "PICK_PATHS", "ByteBudget", "Limits"]


@dataclass(frozen=True)
class Limits:
    max_files: int = 5  # pictures per request
    max_file_bytes: int = 15 * MB  # one picture
    max_total_bytes: int = 50 * MB  # the whole request body
    max_fields: int = 20  # multipart parts that are not files
    max_pixels: int = 50_000_000  # per picture (a 48-megapixel phone photo passes)
    max_full_pixels: int = 16_000_000  # per picture in a format decoded in full (not JPEG)
    max_decode_bytes: int = 256 * MB  # pixels being decoded at once, all requests together
    max_scoring: int = 4  # scoring requests at once; more wait…
    queue_wait_s: float = 2.0  # …this long, then get 503 with Retry-After
    header_timeout_s: float = 10.0  # to send the request line and headers
    body_timeout_s: float = 30.0  # between two chunks of the body
    body_deadline_s: float = 120.0  # for the whole body (a client dripping bytes is cut off)
    max_connections: int = 256  # open connections (uvicorn answers 503 beyond)
    batch_window_s: float = 0.01  # how long the batcher waits for more requests
    max_pick_files: int = 50  # pictures per request to /api/pick (a shoot to pick from)…
    max_pick_total_bytes: int = 200 * MB  # …and its whole body (the same limits per picture)

    def body_limit(self, path: str) -> int:
        """The most bytes a request body to `path` may have."""
        return self.max_pick_total_bytes if path in PICK_PATHS else self.max_total_bytes


PICK_PATHS = ("/pick", "/api/pick")
