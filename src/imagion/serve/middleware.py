"""Limits on the request body, enforced as it arrives (a pure ASGI middleware): its size,
declared or not (a negative or lying Content-Length cannot bypass it), the time between two of
its chunks, and the time for the whole of it (one byte every 25 s never ends otherwise)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from imagion.serve.limits import MB, Limits

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _send_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _closing_boundary(scope: Scope) -> bytes | None:
    """`--boundary--`, the line a complete multipart body ends with (None for other bodies)."""
    for key, value in scope.get("headers", []):
        if key == b"content-type" and value.lower().startswith(b"multipart/form-data"):
            for part in value.split(b";"):
                name, _, boundary = part.strip().partition(b"=")
                if name.lower() == b"boundary" and boundary:
                    return b"--" + boundary.strip(b'"') + b"--"
    return None


class BodyLimit:
    def __init__(self, app: Any, limits: Limits) -> None:
        self.app, self.limits = app, limits

    def _declared(self, scope: Scope) -> None:
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise BodyRefused(400, "Content-Length is not a number.") from None
                if length < 0:
                    raise BodyRefused(400, "Content-Length is negative.")
                if length > self.limits.body_limit(scope.get("path", "")):
                    raise BodyRefused(413, self._too_large(scope))

    def _too_large(self, scope: Scope) -> str:
        return f"upload larger than {self.limits.body_limit(scope.get('path', '')) // MB} MB."

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        received = 0
        deadline = time.monotonic() + self.limits.body_deadline_s
        closing = _closing_boundary(scope)
        tail = b""

        async def limited_receive() -> Message:
            nonlocal received
            left = deadline - time.monotonic()
            wait = min(self.limits.body_timeout_s, max(left, 0.0))
            try:
                message = await asyncio.wait_for(receive(), timeout=wait)
            except TimeoutError:
                if wait < self.limits.body_timeout_s:
                    raise BodyRefused(
                        408,
                        f"the upload took longer than {self.limits.body_deadline_s:g} s; send it again.",
                    ) from None
                raise BodyRefused(408, "the upload stalled; send it again.") from None
            if message["type"] == "http.request":
                nonlocal tail
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.limits.body_limit(scope.get("path", "")):
                    raise BodyRefused(413, self._too_large(scope))
                if closing and not message.get("more_body", False):
                    tail = (tail + chunk)[-(len(closing) + 8) :]
                    scope.setdefault("state", {})["multipart_complete"] = closing in tail
                elif closing:
                    tail = (tail + chunk)[-(len(closing) + 8) :]
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            self._declared(scope)
            await self.app(scope, limited_receive, tracking_send)
        except BodyRefused as exc:
            if not started:
                await _send_error(send, exc.status, exc.message)
