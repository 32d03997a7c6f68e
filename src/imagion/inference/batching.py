"""Dynamic batching, as Triton's dynamic batcher does it: requests that arrive within a short
window share one forward pass.

One worker thread owns the model. A request hands over its images and waits on a future; the
worker takes the first waiting request, keeps collecting for `window_s` (or until `max_images`),
runs one forward pass over all of them and gives each request its slice. With `window_s=0` and
`max_images=0` every request runs alone (the unbatched baseline of bench/serve_load.py)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

# a batch of uint8 images → (raw outputs, pooled features or None)
BatchForward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
Outputs = tuple[np.ndarray, np.ndarray | None]


@dataclass
class _Request:
    images: np.ndarray
    future: Future[Outputs]


class DynamicBatcher:
    """Run `forward` on the images of concurrent requests together."""

    def __init__(
        self,
        forward: BatchForward,
        window_s: float = 0.01,
        max_images: int = 64,
        coming: Callable[[], int] = lambda: 1,
    ) -> None:
        """`coming()` says how many requests are on their way (being decoded): the batcher
        waits for them up to `window_s`, and not at all when none is coming."""
        self.forward, self.window_s, self.max_images, self.coming = (
            forward,
            window_s,
            max_images,
            coming,
        )
        self.requests: queue.Queue[_Request | None] = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="imagion-batcher", daemon=True)
        self.worker.start()

    def submit(self, images: np.ndarray) -> Future[Outputs]:
        """The outputs for these images (N×S×S×3 uint8), when their batch has run."""
        future: Future[Outputs] = Future()
        self.requests.put(_Request(images, future))
        return future

    def close(self) -> None:
        self.requests.put(None)
        self.worker.join(timeout=10)

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        """The first request and those arriving within the window; True when told to stop."""
        batch, n = [first], len(first.images)
        deadline = time.monotonic() + self.window_s
        while n < self.max_images:
            try:
                nxt = self.requests.get_nowait()
            except queue.Empty:
                if self.coming() <= 0 or time.monotonic() >= deadline:
                    break
                time.sleep(0.0005)
                continue
            if nxt is None:
                return batch, True
            batch.append(nxt)
            n += len(nxt.images)
        return batch, False

    def _run(self, batch: list[_Request]) -> None:
        try:
            raw, feats = self.forward(np.concatenate([r.images for r in batch]))
        except Exception as exc:  # every waiting request learns why
            for r in batch:
                r.future.set_exception(exc)
            return
        start = 0
        for r in batch:
            end = start + len(r.images)
            r.future.set_result((raw[start:end], None if feats is None else feats[start:end]))
            start = end

    def _work(self) -> None:
        stop = False
        while not stop:
            first = self.requests.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            self._run(batch)
