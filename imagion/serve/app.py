"""The FastAPI application: the page at `/`, the JSON API at `POST /api/score`, `/healthz`, and
OpenAPI docs at `/docs`. Limits come from `Limits`; errors are JSON for the API and the page
with a message for browsers, with the status codes 400, 413, 415 and 503."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from imagion import __version__
from imagion.problems import joined
from imagion.serve.limits import MB, Limits
from imagion.serve.middleware import BodyLimit, BodyRefused
from imagion.serve.page import render_error, render_page, render_results
from imagion.serve.scorer import Scored, Scorer, Upload

UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "1 to 5 pictures (repeat the field)",
                        }
                    },
                }
            }
        },
    }
}


PARSER_MAX_FILES = 64  # files the multipart parser accepts before it refuses the body


class ServeError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class Service:
    """One scoring request at a time per slot of `limits.max_scoring`; the rest wait briefly."""

    def __init__(self, scorer: Scorer, limits: Limits) -> None:
        self.scorer, self.limits = scorer, limits
        self.slots = asyncio.Semaphore(limits.max_scoring)

    async def score(self, request: Request) -> Scored:
        """The whole upload arrives (within the body limits) before a scoring slot is taken:
        a slow client holds a connection, never a slot."""
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise ServeError(415, "send the pictures as multipart/form-data, field `images`.")
        form = await self._form(request)
        complete = getattr(request.state, "multipart_complete", True)
        try:
            try:
                await asyncio.wait_for(self.slots.acquire(), timeout=self.limits.queue_wait_s)
            except TimeoutError:
                raise ServeError(
                    503, "busy scoring other pictures; try again in a moment.", retry_after=1
                ) from None
            try:
                uploads, oversized, empty = await self._parts(form, complete)
                scored = await self.scorer.score(uploads)
                scored.notes += self._chosen_note(form, len(uploads) + len(oversized) + len(empty))
            finally:
                self.slots.release()
        finally:
            await form.close()
        scored.problems = oversized + empty + scored.problems
        if not scored.items:
            raise ServeError(
                413 if oversized else 415,
                "no picture could be scored: " + joined(scored.problems),
            )
        return scored

    def _chosen_note(self, form: FormData, sent: int) -> list[str]:
        """The page sends how many pictures were chosen when it kept only the first ones."""
        chosen = form.get("chosen")
        if not isinstance(chosen, str) or not chosen.isdigit() or int(chosen) <= sent:
            return []
        return [
            f"The first {sent} of the {int(chosen)} pictures chosen were scored: the page scores "
            f"at most {self.limits.max_files} at a time."
        ]

    async def _form(self, request: Request) -> FormData:
        """The parsed multipart body (files spooled by Starlette, not held in memory)."""
        lim = self.limits
        try:
            # the parser's own cap is far above ours (the body limit bounds the bytes anyway), so
            # that "more than 5" is counted here and said in our words
            form = await request.form(
                max_files=PARSER_MAX_FILES, max_fields=lim.max_fields, max_part_size=64 * 1024
            )
        except ClientDisconnect:  # the client went away mid-upload: nothing to answer, no trace
            raise ServeError(400, "the upload was cut off by the client.") from None
        except HTTPException as exc:
            raise ServeError(400, f"malformed upload: {exc.detail}") from None
        files = sum(isinstance(v, UploadFile) for _, v in form.multi_items())
        if files > lim.max_files:
            await form.close()
            raise ServeError(
                400,
                f"more than {lim.max_files} pictures sent; the page scores at most {lim.max_files} at a time.",
            )
        return form

    async def _parts(
        self, form: FormData, complete: bool = True
    ) -> tuple[list[Upload], list[str], list[str]]:
        """The uploaded pictures, one line per picture over the size limit, one per empty file."""
        lim = self.limits
        uploads: list[Upload] = []
        oversized: list[str] = []
        empty: list[str] = []
        for part in form.getlist("images"):
            if not isinstance(part, UploadFile):
                continue
            name = (
                Path((part.filename or "").replace("\\", "/")).name.replace("\x00", "") or "upload"
            )
            data = await part.read(lim.max_file_bytes + 1)
            if len(data) > lim.max_file_bytes:
                oversized.append(f"{name}: larger than {lim.max_file_bytes // MB} MB; skipped.")
            elif data:
                uploads.append(Upload(name, data))
            else:
                empty.append(f"{name}: an empty file (0 bytes); skipped.")
        if not uploads and not oversized and not empty:
            if not complete:
                raise ServeError(
                    400, "the upload ended before its closing boundary (cut off?); send it again."
                )
            raise ServeError(
                400, f"no picture in the upload; choose 1 to {lim.max_files} image files."
            )
        return uploads, oversized, empty


def create_app(scorer: Scorer, limits: Limits, model_name: str) -> FastAPI:
    from fastapi_offline import FastAPIOffline

    # /docs with Swagger UI's assets served from the package, not a CDN: it works offline
    app = FastAPIOffline(
        title="imagion",
        version=__version__,
        description="Score pictures 0–10 (10 = excellent) before they are posted.",
        redoc_url=None,
    )
    service = Service(scorer, limits)
    app.state.service = service

    def page(
        results: str = "", status: int = 200, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        body = render_page(model_name, limits.max_files, limits.max_file_bytes // MB, results)
        return HTMLResponse(body, status_code=status, headers=headers)

    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    async def index() -> HTMLResponse:
        return page()

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    @app.post("/score", response_class=HTMLResponse, include_in_schema=False)
    async def score_page(request: Request) -> HTMLResponse:
        try:
            return page(render_results(await service.score(request)))
        except ServeError as exc:
            return page(render_error(exc.message), exc.status, exc.headers())

    @app.post(
        "/api/score", openapi_extra=UPLOAD_SCHEMA, summary="Score 1 to 5 pictures, best first"
    )
    async def score_api(request: Request) -> JSONResponse:
        try:
            scored = await service.score(request)
        except ServeError as exc:
            return JSONResponse(
                {"error": exc.message}, status_code=exc.status, headers=exc.headers()
            )
        return JSONResponse(
            {"results": scored.rows(), "problems": scored.problems, "notes": scored.notes}
        )

    @app.exception_handler(BodyRefused)
    async def refused(request: Request, exc: BodyRefused) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message}, status_code=exc.status, headers={"Connection": "close"}
        )

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "model": model_name}

    app.add_middleware(BodyLimit, limits=limits)
    return app
