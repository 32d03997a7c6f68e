"""`imagion serve`: the upload page — up to 5 pictures, a 0–10 score and a suggestion for each.

Standard library only (http.server + the email package's multipart parser); the model is loaded
once and shared by the request threads. `POST /score` answers HTML, or JSON with `?format=json`
or `Accept: application/json`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import tempfile
import threading
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from imagion.errors import ImagionError
from imagion.images import to_rgb
from imagion.inference.engine import open_engine
from imagion.inference.rank import Ranked, score_files

MAX_FILES = 5
MAX_BYTES = 25 * 1024 * 1024  # the whole upload

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>imagion — which picture will get more attention?</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.5rem; }} .muted {{ color: #666; font-size: .9rem; }}
form {{ border: 2px dashed #bbb; padding: 1.2rem; border-radius: .6rem; }}
button {{ font-size: 1rem; padding: .4rem 1.2rem; margin-top: .6rem; }}
.card {{ display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid #eee; padding: .8rem 0; }}
.card img {{ width: 128px; height: 128px; object-fit: cover; border-radius: .4rem; }}
.score {{ font-size: 1.8rem; font-weight: 700; min-width: 4rem; }}
.bar {{ background: #eee; height: .5rem; width: 12rem; border-radius: .25rem; }}
.bar span {{ display: block; height: 100%; background: #d6336c; border-radius: .25rem; }}
.error {{ color: #b00; }}
</style></head><body>
<h1>Which of these pictures will get more attention?</h1>
<form method="post" action="/score" enctype="multipart/form-data">
<input type="file" name="images" accept="image/jpeg,image/png,image/webp" multiple required>
<br><button type="submit">Score</button>
<p class="muted">Up to {max_files} pictures (JPEG, PNG, WebP). Scores run from 0 (bad) to 10 (excellent);
5 is a typical post. Model: {model}.</p>
</form>
{results}
</body></html>"""


def _thumbnail(data: bytes) -> str:
    try:
        src = Image.open(io.BytesIO(data))
        src.draft("RGB", (256, 256))
        im = to_rgb(src)
        im.thumbnail((256, 256))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    except OSError:
        return ""


def parse_upload(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each uploaded file of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        raise ImagionError("send the pictures as multipart/form-data (the page's form does).")
    msg = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    files = []
    for part in msg.iter_parts():
        name = part.get_filename()
        data = part.get_payload(decode=True) or b""
        if name is not None and isinstance(data, bytes) and data:
            files.append((Path(name).name or "upload", data))
    if not files:
        raise ImagionError("no picture in the upload; choose 1 to 5 image files.")
    if len(files) > MAX_FILES:
        raise ImagionError(
            f"{len(files)} pictures sent; the page scores at most {MAX_FILES} at a time."
        )
    return files


class Scorer:
    """The model, loaded once; scoring is serialized (one forward pass at a time uses all cores)."""

    def __init__(self, model: str | Path | None, device: str) -> None:
        self.engine = open_engine(model, device)
        self.lock = threading.Lock()

    def score(
        self, files: list[tuple[str, bytes]]
    ) -> tuple[list[Ranked], list[str], dict[str, str]]:
        with tempfile.TemporaryDirectory(prefix="imagion-serve-") as tmp:
            paths, names = [], {}
            for k, (name, data) in enumerate(files):
                path = Path(tmp) / f"{k}_{name}"
                path.write_bytes(data)
                paths.append(path)
                names[str(path)] = name
            with self.lock:
                items, bad = score_files(self.engine, paths)
            problems = [p.replace(str(Path(tmp)) + "/", "").split("_", 1)[-1] for p in bad]
            for item in items:
                item.path = Path(names[str(item.path)])
        return items, problems, {name: _thumbnail(data) for name, data in files}


def render_results(items: list[Ranked], problems: list[str], thumbs: dict[str, str]) -> str:
    parts = ["<h2>Best first</h2>"] if items else []
    for k, r in enumerate(items):
        name = html.escape(str(r.path))
        tip = html.escape(r.suggestion.text) if r.suggestion else ""
        seen = html.escape(", ".join(r.labels[:3])) if r.labels else ""
        img = (
            f'<img src="{thumbs.get(str(r.path), "")}" alt="{name}">'
            if thumbs.get(str(r.path))
            else ""
        )
        parts.append(
            f'<div class="card">{img}<div class="score">{r.score:.1f}</div><div>'
            f'<b>#{k + 1} {name}</b><div class="bar"><span style="width:{r.score * 10:.0f}%"></span></div>'
            f'<p>{tip}</p><p class="muted">{"seen: " + seen if seen else ""}</p></div></div>'
        )
    parts += [f'<p class="error">skipped {html.escape(p)}</p>' for p in problems]
    return "\n".join(parts)


def make_server(
    host: str, port: int, model: str | Path | None = None, device: str = "auto"
) -> ThreadingHTTPServer:
    scorer = Scorer(model, device)
    model_name = f"{scorer.engine.path.name} ({scorer.engine.arch})"

    class Handler(BaseHTTPRequestHandler):
        server_version = "imagion"

        def log_message(self, fmt: str, *args: Any) -> None:  # access log on stderr, quiet
            pass

        def _send(
            self, status: HTTPStatus, body: str, ctype: str = "text/html; charset=utf-8"
        ) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _wants_json(self) -> bool:
            return "format=json" in self.path or "application/json" in (
                self.headers.get("Accept") or ""
            )

        def _page(self, results: str = "") -> str:
            return PAGE.format(max_files=MAX_FILES, model=html.escape(model_name), results=results)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(HTTPStatus.OK, "ok", "text/plain")
            elif self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, self._page())
            else:
                self._send(HTTPStatus.NOT_FOUND, self._page('<p class="error">No such page.</p>'))

        def do_POST(self) -> None:
            if not self.path.startswith("/score"):
                self._send(HTTPStatus.NOT_FOUND, self._page('<p class="error">No such page.</p>'))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BYTES:
                    raise ImagionError(
                        f"upload of {length:,} bytes is over the {MAX_BYTES // 2**20} MB limit."
                    )
                files = parse_upload(
                    self.headers.get("Content-Type") or "", self.rfile.read(length)
                )
                items, problems, thumbs = scorer.score(files)
            except ImagionError as exc:
                if self._wants_json():
                    self._send(
                        HTTPStatus.BAD_REQUEST, json.dumps({"error": str(exc)}), "application/json"
                    )
                else:
                    self._send(
                        HTTPStatus.BAD_REQUEST,
                        self._page(f'<p class="error">{html.escape(str(exc))}</p>'),
                    )
                return
            if self._wants_json():
                rows = [
                    {
                        "rank": k + 1,
                        "file": str(r.path),
                        "score": round(r.score, 3),
                        "labels": r.labels,
                        "suggestion": r.suggestion.text if r.suggestion else None,
                    }
                    for k, r in enumerate(items)
                ]
                self._send(
                    HTTPStatus.OK,
                    json.dumps({"results": rows, "problems": problems}),
                    "application/json",
                )
            else:
                self._send(HTTPStatus.OK, self._page(render_results(items, problems, thumbs)))

    return ThreadingHTTPServer((host, port), Handler)
