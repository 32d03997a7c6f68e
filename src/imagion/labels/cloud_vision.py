"""Google Cloud Vision LABEL_DETECTION through the official client: batched, downscaled, retried.

Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS). Each image
is one billable unit of LABEL_DETECTION. Tests pass a fake `client` with `batch_annotate_images`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from PIL import Image

from imagion.errors import ImagionError, OptionError, ServiceError
from imagion.images import one_file, open_image, read_image_bytes, to_rgb
from imagion.progress import Progress

BATCH = 16  # the API's limit of images per synchronous request
MAX_SIDE = 1024  # larger photos are downscaled before upload: same labels, far fewer bytes
MAX_RESULTS = 10
RETRIES = 5
# Requests in flight at once. The Vision API's default quota is 1,800 requests per minute per
# project; 4 concurrent requests of 16 images stay far below it with the retry backoff below.
DEFAULT_CONCURRENCY = 4
PRICE_PER_1000 = 1.50  # USD per 1,000 LABEL_DETECTION units (units 1,001–5,000,000 a month)
FREE_UNITS_PER_MONTH = 1000

CREDENTIALS_HELP = (
    "no Google Cloud credentials found: create a service-account key with the Vision API enabled and "
    "`export GOOGLE_APPLICATION_CREDENTIALS=/path/to/key.json` (or run `gcloud auth application-default "
    "login`); offline alternatives: `provider` local, instagram or hashtags."
)


def make_client() -> Any:
    """The real ImageAnnotatorClient, or an ImagionError saying how to set credentials up."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import vision

    try:
        credentials, _ = google.auth.default()
    except DefaultCredentialsError:
        raise ServiceError(CREDENTIALS_HELP) from None
    return vision.ImageAnnotatorClient(credentials=credentials)


def image_bytes(path: str | Path) -> bytes:
    """The file's bytes, or a JPEG re-encode when its long side exceeds MAX_SIDE."""
    im = open_image(path)
    with one_file(str(path)):
        if max(im.size) <= MAX_SIDE and im.format in ("JPEG", "PNG", "WEBP"):
            return read_image_bytes(path)
        im.draft("RGB", (MAX_SIDE, MAX_SIDE))
        im = to_rgb(im)
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        return buf.getvalue()


def build_requests(contents: list[bytes]) -> list[Any]:
    from google.cloud import vision

    feature = vision.Feature(type_=vision.Feature.Type.LABEL_DETECTION, max_results=MAX_RESULTS)
    return [
        vision.AnnotateImageRequest(image=vision.Image(content=c), features=[feature])
        for c in contents
    ]


def _call_with_retries(client: Any, requests: list[Any], sleep: Callable[[float], None]) -> Any:
    from google.api_core import exceptions as gexc

    transient = (
        gexc.ResourceExhausted,
        gexc.ServiceUnavailable,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.TooManyRequests,
    )
    for attempt in range(RETRIES + 1):
        try:
            return client.batch_annotate_images(requests=requests)
        except transient as exc:
            if attempt == RETRIES:
                raise ServiceError(
                    f"Cloud Vision kept failing after {RETRIES} retries: {exc}"
                ) from exc
            sleep(min(2.0**attempt, 30.0))
        except gexc.PermissionDenied as exc:
            raise ServiceError(
                f"Cloud Vision refused the request (is the Vision API enabled?): {exc}"
            ) from exc
    raise AssertionError("unreachable")


Labels = dict[int, list[tuple[str, float]]]


def _batch_contents(
    paths: list[str], idx: range, problems: list[str]
) -> tuple[list[int], list[bytes]]:
    ok, contents = [], []
    for i in idx:
        try:
            contents.append(image_bytes(paths[i]))
            ok.append(i)
        except ImagionError as exc:
            problems.append(str(exc))
    return ok, contents


def _annotate(
    client: Any,
    paths: list[str],
    idx: list[int],
    contents: list[bytes],
    sleep: Callable[[float], None],
) -> tuple[Labels, list[str]]:
    """One request of up to BATCH images: labels per path index, and per-image errors."""
    response = _call_with_retries(client, build_requests(contents), sleep)
    results: Labels = {}
    problems: list[str] = []
    for i, r in zip(idx, response.responses, strict=True):
        if r.error and r.error.code:
            problems.append(f"{paths[i]}: Cloud Vision error {r.error.code}: {r.error.message}")
            continue
        results[i] = [(a.description.lower(), float(a.score)) for a in r.label_annotations]
    return results, problems


class _Run:
    """Requests of BATCH images, `concurrency` in flight; each returned batch is handed over at
    once, in the calling thread."""

    def __init__(
        self,
        paths: list[str],
        client: Any,
        sleep: Callable[[float], None],
        progress: Progress | None,
        on_batch: Callable[[Labels], None] | None,
    ) -> None:
        self.paths, self.client, self.sleep = paths, client, sleep
        self.progress, self.on_batch = progress, on_batch
        self.results: Labels = {}
        self.problems: list[str] = []
        self.starts = iter(range(0, len(paths), BATCH))
        self.done = 0
        self.failure: BaseException | None = None
        self.running: set[Future] = set()

    def submit(self, pool: ThreadPoolExecutor) -> None:
        """Start the next request that has at least one readable image."""
        n = len(self.paths)
        for start in self.starts:
            idx, contents = _batch_contents(
                self.paths, range(start, min(start + BATCH, n)), self.problems
            )
            if contents:
                self.running.add(
                    pool.submit(_annotate, self.client, self.paths, idx, contents, self.sleep)
                )
                return
            self.done += min(BATCH, n - start)

    def collect(self, fut: Future) -> None:
        self.running.discard(fut)
        try:
            batch, batch_problems = fut.result()
        except BaseException as exc:  # kept, and raised once the others are saved
            self.failure = self.failure or exc
            return
        self.problems.extend(batch_problems)
        self.results.update(batch)
        if self.on_batch:
            self.on_batch(batch)
        self.done += len(batch) + len(batch_problems)
        if self.progress:
            self.progress(min(self.done, len(self.paths)), len(self.paths))

    def run(self, concurrency: int) -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            try:
                for _ in range(concurrency):
                    self.submit(pool)
                while self.running:
                    finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        self.collect(fut)
                        if self.failure is None:
                            self.submit(pool)
            except KeyboardInterrupt:
                for fut in list(self.running):  # paid for already: wait, and keep what comes back
                    self.collect(fut)
                raise

    def raise_failure(self) -> None:
        failure = self.failure
        if failure is None:
            return
        if isinstance(failure, KeyboardInterrupt | ImagionError):
            raise failure
        raise ServiceError(
            f"Cloud Vision request failed: {type(failure).__name__}: {failure}"
        ) from failure


def label_images(
    paths: list[str],
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
    on_batch: Callable[[Labels], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> tuple[Labels, list[str]]:
    """Labels for each path index, and problems (per image) that did not stop the run.

    Requests of BATCH images run `concurrency` at a time. Each returned batch goes to
    `on_batch` at once (in the calling thread), so a caller can save what was paid for before
    the next one: an error, a quota stop or Ctrl-C loses no label already returned. On Ctrl-C
    the requests already in flight are waited for and handed over too; then KeyboardInterrupt
    is raised again. A failed request stops the run after the others in flight have returned.
    """
    if concurrency < 1:
        raise OptionError("concurrency", concurrency, "use at least 1 request in flight.")
    run = _Run(paths, client or make_client(), sleep, progress, on_batch)
    run.run(concurrency)
    run.raise_failure()
    return run.results, run.problems
