"""Requests per second of `imagion serve` with 1 and 20 concurrent clients, batched vs unbatched.

Each request uploads one photo to POST /api/score over loopback. The same server code runs
twice, once with dynamic batching (the default) and once without (`--no-batching`); the ratio
is printed side by side. Usage: python bench/serve_load.py [--requests 60] [--model PATH]
"""

from __future__ import annotations

import argparse
import http.client
import io
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from imagion.serve.limits import Limits
from imagion.serve.runner import bind, build_app, make_server


def photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (1080, 1080, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).resize((1080, 1080)).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def body(data: bytes) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    head = f'--{b}\r\nContent-Disposition: form-data; name="images"; filename="p.jpg"\r\n\r\n'
    return head.encode() + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def run(
    model: str | None, batching: bool, clients: int, requests: int, payload: bytes
) -> tuple[float, dict[int, int]]:
    limits = Limits(max_scoring=32, queue_wait_s=30)
    sock = bind("127.0.0.1", 0)
    app, scorer = build_app(model, "cpu", limits, batching)
    server = make_server(app, limits)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = sock.getsockname()[1]
    data, ctype = body(payload)

    def one(_: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/api/score", body=data, headers={"Content-Type": ctype})
        status = conn.getresponse().status
        conn.close()
        return status

    one(0)  # warm-up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - t0
    server.should_exit = True
    thread.join(timeout=10)
    scorer.close()
    sock.close()
    return requests / elapsed, {s: statuses.count(s) for s in set(statuses)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    args = ap.parse_args()
    payload = photo(0)
    print(f"{args.requests} requests of one 1080×1080 JPEG each, loopback, CPU")
    print(f"{'clients':>8} {'unbatched req/s':>16} {'batched req/s':>14} {'ratio':>6}  statuses")
    for clients in (1, 20):
        plain, s1 = run(args.model, False, clients, args.requests, payload)
        batched, s2 = run(args.model, True, clients, args.requests, payload)
        print(f"{clients:>8} {plain:>16.1f} {batched:>14.1f} {batched / plain:>5.2f}×  {s1} {s2}")


if __name__ == "__main__":
    main()
