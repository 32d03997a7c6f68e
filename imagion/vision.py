"""Google Cloud Vision LABEL_DETECTION through the official client: batched, downscaled, retried.

Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS). Each image
is one billable unit of LABEL_DETECTION. Tests pass a fake `client` with `batch_annotate_images`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from imagion.errors import ImagionError

BATCH = 16  # the API's limit of images per synchronous request
MAX_SIDE = 1024  # larger photos are downscaled before upload: same labels, far fewer bytes
MAX_RESULTS = 10
RETRIES = 5

CREDENTIALS_HELP = (
    "no Google Cloud credentials found: create a service-account key with the Vision API enabled and "
    "`export GOOGLE_APPLICATION_CREDENTIALS=/path/to/key.json` (or run `gcloud auth application-default "
    "login`); offline alternatives: --provider local, instagram or hashtags."
)


def make_client() -> Any:
    """The real ImageAnnotatorClient, or an ImagionError saying how to set credentials up."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import vision

    try:
        credentials, _ = google.auth.default()
    except DefaultCredentialsError:
        raise ImagionError(CREDENTIALS_HELP) from None
    return vision.ImageAnnotatorClient(credentials=credentials)


def image_bytes(path: str | Path) -> bytes:
    """The file's bytes, or a JPEG re-encode when its long side exceeds MAX_SIDE."""
    from imagion.images import open_image

    im = open_image(path)
    try:
        if max(im.size) <= MAX_SIDE and im.format in ("JPEG", "PNG", "WEBP"):
            return Path(path).read_bytes()
        im.draft("RGB", (MAX_SIDE, MAX_SIDE))
        im = im.convert("RGB")
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        return buf.getvalue()
    except OSError as exc:
        raise ImagionError(f"{path}: image is damaged ({exc}).") from exc


def build_requests(contents: list[bytes]) -> list[Any]:
    from google.cloud import vision

    feature = vision.Feature(type_=vision.Feature.Type.LABEL_DETECTION, max_results=MAX_RESULTS)
    return [
        vision.AnnotateImageRequest(image=vision.Image(content=c), features=[feature])
        for c in contents
    ]


def _call_with_retries(client: Any, requests: list[Any], sleep: Callable[[float], None]) -> Any:
    from google.api_core import exceptions as gexc

    transient = (gexc.ResourceExhausted, gexc.ServiceUnavailable, gexc.DeadlineExceeded,
                 gexc.InternalServerError, gexc.TooManyRequests)  # fmt: skip
    for attempt in range(RETRIES + 1):
        try:
            return client.batch_annotate_images(requests=requests)
        except transient as exc:
            if attempt == RETRIES:
                raise ImagionError(
                    f"Cloud Vision kept failing after {RETRIES} retries: {exc}"
                ) from exc
            sleep(min(2.0**attempt, 30.0))
        except gexc.PermissionDenied as exc:
            raise ImagionError(
                f"Cloud Vision refused the request (is the Vision API enabled?): {exc}"
            ) from exc
    raise AssertionError("unreachable")


def label_images(
    paths: list[str],
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[int, list[tuple[str, float]]], list[str]]:
    """Labels for each path index, and problems (per image) that did not stop the batch."""
    client = client or make_client()
    results: dict[int, list[tuple[str, float]]] = {}
    problems: list[str] = []
    for start in range(0, len(paths), BATCH):
        idx, contents = [], []
        for i in range(start, min(start + BATCH, len(paths))):
            try:
                contents.append(image_bytes(paths[i]))
                idx.append(i)
            except ImagionError as exc:
                problems.append(str(exc))
        if not contents:
            continue
        response = _call_with_retries(client, build_requests(contents), sleep)
        for i, r in zip(idx, response.responses, strict=True):
            if r.error and r.error.code:
                problems.append(f"{paths[i]}: Cloud Vision error {r.error.code}: {r.error.message}")
                continue
            results[i] = [(a.description.lower(), float(a.score)) for a in r.label_annotations]
        if progress:
            progress(min(start + BATCH, len(paths)), len(paths))
    return results, problems
