"""Helpers for the server tests: multipart bodies and a real uvicorn server on loopback."""

from __future__ import annotations

import io
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from PIL import Image

from imagion.serve.limits import Limits
from imagion.serve.runner import serving_in_thread


def jpeg_bytes(brightness: float, size: tuple[int, int] = (64, 64), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(brightness * 255 + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(
        np.uint8
    )
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def multipart(
    files: list[tuple[str, bytes]], field: str = "images", fields: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """A multipart body of `files` (each as `field`) and the form's other `fields`."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in (fields or {}).items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        body += head.encode() + value.encode() + b"\r\n"
    for name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        body += head.encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def live_server(
    model: Path | None, limits: Limits | None = None, batching: bool = True
) -> AbstractContextManager[str]:
    """A real uvicorn server in a thread (model None: the bundled one); yields its base URL."""
    return serving_in_thread(str(model) if model else None, limits, batching)
