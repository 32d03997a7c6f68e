"""The FastAPI application: the page at `/`, the JSON API at `POST /api/score`, `/healthz`, and
OpenAPI docs at `/docs`. Limits come from `Limits`; errors are JSON for the API and the page
with a message for browsers, with the status codes 400, 413, 415 and 503."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from imagion import __version__
from imagion.errors import ImagionError
from imagion.inference.groups import SIMILARITY, check_similarity
from imagion.inference.pick import PICK_N, PickResult, check_n, choose
from imagion.problems import joined
from imagion.scores import NEXT_MEANING, RANGE_MEANING, SCORE_MEANING
from imagion.serve.limits import MB, Limits
from imagion.serve.middleware import BodyLimit, BodyRefused
from imagion.serve.page import (
    render_error,
    render_page,
    render_pick,
    render_pick_page,
    render_results,
)
from imagion.serve.scorer import Grouped, Scored, Scorer, Upload


def _upload_schema(pictures: str, **fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a multipart upload: the `images` field (`pictures` says how
    many) and any other form `fields`."""
    images = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": f"{pictures} (repeat the field)",
    }
    body = {"type": "object", "required": ["images"], "properties": {"images": images} | fields}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}


def _schemas(limits: Limits) -> tuple[dict[str, Any], dict[str, Any]]:
    """The upload schemas of /api/score and /api/pick, their counts from `limits`."""
    score = _upload_schema(f"1 to {limits.max_files} pictures")
    pick = _upload_schema(
        f"1 to {limits.max_pick_files} pictures of a shoot",
        n={"type": "integer", "default": PICK_N, "description": "pictures to pick"},
        similarity={"type": "number", "default": SIMILARITY, "description": "grouping threshold"},
    )
    return score, pick


PARSER_MAX_FILES = 64  # files the multipart parser accepts before it refuses the body


T = TypeVar("T")
N = TypeVar("N", int, float)


def _form_number(form: FormData, name: str, default: N, kind: Callable[[str], N]) -> N:
    """A number sent as a form field (`default` when it is not sent)."""
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return default
    try:
        return kind(value.strip())
    except ValueError:
        raise ServeError(400, f"`{name}` {value[:20]!r}: not a number.") from None


MAX_COUNT_DIGITS = 6  # a count of pictures sent as a form field


def _form_count(form: FormData, name: str) -> int | None:
    """A count sent as a form field: ASCII digits only ("²".isdigit() is true, and int() of
    5,000 digits raises); None when it is not sent."""
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_COUNT_DIGITS):
        raise ServeError(
            400, f"`{name}` {value[:20]!r}: not a count (at most {MAX_COUNT_DIGITS} digits)."
        )
    return int(text)


class ServeError(ImagionError):
    """A request the server refuses: the HTTP status, the message, and when to retry."""

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
        scored, oversized, empty, form = await self._run(
            request, self.limits.max_files, self._score
        )
        sent = len(scored.thumbs) + len(scored.problems) + len(oversized) + len(empty)
        scored.notes += self._chosen_note(form, sent)
        scored.problems = oversized + empty + scored.problems
        if not scored.items:
            raise ServeError(
                413 if oversized else 415,
                "no picture could be scored: " + joined(scored.problems),
            )
        return scored

    async def _score(self, uploads: list[Upload], form: FormData) -> Scored:
        _form_count(form, "chosen")  # a bad value is refused before any scoring
        return await self.scorer.score(uploads)

    async def pick(self, request: Request) -> tuple[Grouped, PickResult]:
        """Up to `max_pick_files` pictures of a shoot: their groups of near-duplicates and the
        best of the `n` best groups (form fields `n`, `similarity`)."""
        grouped, oversized, empty, form = await self._run(
            request, self.limits.max_pick_files, self._group
        )
        grouped.problems = oversized + empty + grouped.problems
        if grouped.result is None:
            raise ServeError(
                413 if oversized else 415,
                "no picture could be scored: " + joined(grouped.problems),
            )
        grouped.result.problems = grouped.problems
        return grouped, choose(grouped.result, _form_number(form, "n", PICK_N, int))

    async def _group(self, uploads: list[Upload], form: FormData) -> Grouped:
        try:
            check_similarity(_form_number(form, "similarity", SIMILARITY, float))
            check_n(_form_number(form, "n", PICK_N, int))
        except ImagionError as exc:
            raise ServeError(400, str(exc)) from None
        return await self.scorer.group(uploads, _form_number(form, "similarity", SIMILARITY, float))

    async def _run(
        self,
        request: Request,
        max_files: int,
        work: Callable[[list[Upload], FormData], Awaitable[T]],
    ) -> tuple[T, list[str], list[str], FormData]:
        """`work` on the uploads of a request in a scoring slot: (its result, one line per
        picture over the size limit, one per empty file, the form)."""
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise ServeError(415, "send the pictures as multipart/form-data, field `images`.")
        form = await self._form(request, max_files)
        complete = getattr(request.state, "multipart_complete", True)
        try:
            try:
                await asyncio.wait_for(self.slots.acquire(), timeout=self.limits.queue_wait_s)
            except TimeoutError:
                raise ServeError(
                    503, "busy scoring other pictures; try again in a moment.", retry_after=1
                ) from None
            try:
                uploads, oversized, empty = await self._parts(form, complete, max_files)
                result = await work(uploads, form)
            finally:
                self.slots.release()
        finally:
            await form.close()
        return result, oversized, empty, form

    def _chosen_note(self, form: FormData, sent: int) -> list[str]:
        """The page sends how many pictures were chosen when it kept only the first ones."""
        chosen = _form_count(form, "chosen")
        if chosen is None or chosen <= sent:
            return []
        return [
            f"The first {sent} of the {int(chosen)} pictures chosen were scored: the page scores "
            f"at most {self.limits.max_files} at a time."
        ]

    async def _form(self, request: Request, max_files: int) -> FormData:
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
        if files > max_files:
            await form.close()
            raise ServeError(
                400,
                f"more than {max_files} pictures sent; the page scores at most {max_files} at a time.",
            )
        return form

    async def _parts(
        self, form: FormData, complete: bool, max_files: int
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
            raise ServeError(400, f"no picture in the upload; choose 1 to {max_files} image files.")
        return uploads, oversized, empty


def create_app(scorer: Scorer, limits: Limits, model_name: str) -> FastAPI:
    from fastapi_offline import FastAPIOffline

    upload_schema, pick_schema = _schemas(limits)
    # /docs with Swagger UI's assets served from the package, not a CDN: it works offline
    app = FastAPIOffline(
        title="imagion",
        version=__version__,
        description=(
            "Score pictures 0–10 before they are posted. "
            + " ".join((SCORE_MEANING, RANGE_MEANING, NEXT_MEANING))
            + " Each result carries `score`, its 80% range `score_low`–`score_high` (absent, with"
            " a note, for a model without held-out predictions) and `p_beats_next`."
        ),
        redoc_url=None,
    )
    service = Service(scorer, limits)
    app.state.service = service

    def page(
        results: str = "", status: int = 200, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        mb = limits.max_file_bytes // MB
        body = render_page(
            model_name, limits.max_files, mb, results, max_pick=limits.max_pick_files
        )
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
        "/api/score",
        openapi_extra=upload_schema,
        summary=f"Score 1 to {limits.max_files} pictures, best first",
    )
    async def score_api(request: Request) -> JSONResponse:
        try:
            scored = await service.score(request)
        except ServeError as exc:
            return JSONResponse(
                {"error": exc.message}, status_code=exc.status, headers=exc.headers()
            )
        notes = scored.notes + ([scored.no_interval] if scored.no_interval else [])
        return JSONResponse({"results": scored.rows(), "problems": scored.problems, "notes": notes})

    def pick_page(
        results: str = "",
        status: int = 200,
        headers: dict[str, str] | None = None,
        n: int = 5,
    ) -> HTMLResponse:
        mb = limits.max_file_bytes // MB
        body = render_pick_page(
            model_name,
            limits.max_pick_files,
            mb,
            results,
            max_score=limits.max_files,
            n=n,
        )
        return HTMLResponse(body, status_code=status, headers=headers)

    @app.api_route(
        "/pick", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    async def pick_index() -> HTMLResponse:
        return pick_page()

    @app.post("/pick", response_class=HTMLResponse, include_in_schema=False)
    async def pick_results(request: Request) -> HTMLResponse:
        try:
            grouped, picked = await service.pick(request)
            return pick_page(
                render_pick(grouped, picked), n=min(picked.asked, limits.max_pick_files)
            )
        except ServeError as exc:
            return pick_page(render_error(exc.message), exc.status, exc.headers())

    @app.post(
        "/api/pick",
        openapi_extra=pick_schema,
        summary=f"Group up to {limits.max_pick_files} pictures of a shoot; pick the best of the n best groups",
    )
    async def pick_api(request: Request) -> JSONResponse:
        try:
            grouped, picked = await service.pick(request)
        except ServeError as exc:
            return JSONResponse(
                {"error": exc.message}, status_code=exc.status, headers=exc.headers()
            )
        return JSONResponse(
            {
                "picks": picked.to_list(),
                "groups": picked.grouping.to_groups(),
                "problems": grouped.problems,
                "notes": picked.notes,
            }
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
