"""Running the app on uvicorn: the socket bound first (a clear error when the port is taken),
timeouts for slow clients, a bounded number of connections, clean shutdown on SIGTERM/Ctrl-C."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from imagion.errors import OptionError, ServiceError
from imagion.inference.engine import open_engine
from imagion.inference.history import load_history
from imagion.progress import logged
from imagion.serve.limits import Limits
from imagion.serve.scorer import Scorer
from imagion.settings import BUNDLED_CAVEAT, is_bundled_model


def header_timeout_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing connections that do not send a complete request
    line and headers within `timeout_s` (uvicorn itself only times out idle keep-alives)."""

    class TimedH11Protocol(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self.deadline = self.loop.call_later(timeout_s, self._expire)

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _expire(self) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # the headers are in: the body has its own timeout

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or ImagionError saying why not."""
    if not 0 <= port <= 65535:
        raise OptionError("port", port, "use a port from 1 to 65535 (0 picks a free one).")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OptionError("host", host, f"unknown address ({exc.strerror}).") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServiceError(
            f"cannot listen on {host}:{port} ({exc.strerror}); try another `port`."
        ) from None
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, limits: Limits) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=header_timeout_protocol(limits.header_timeout_s),
        lifespan="off",
        log_level="warning",
        access_log=False,
        limit_concurrency=limits.max_connections,
        backlog=2048,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def build_app(
    model: str | None,
    device: str,
    limits: Limits,
    batching: bool = True,
    stats: Path | None = None,
    crops: bool = False,
    history: Path | None = None,
    account: str | None = None,
) -> tuple[Any, Any]:
    """(ASGI app, scorer): the model loaded once, behind the batcher; with a catalog as
    `history`, the posts of `account` with their features, loaded once too."""
    from imagion.serve.app import create_app

    engine = open_engine(model, device, stats=stats)
    past = None
    if history is not None:
        past = load_history(history, engine, account=account, progress=logged(None, "past posts"))
    scorer = Scorer(engine, limits, batching, crops, past)
    name = f"{engine.path.name} ({engine.arch})"
    if is_bundled_model(engine.path):
        name += f"; {BUNDLED_CAVEAT}"
    return create_app(scorer, limits, name), scorer


@contextmanager
def serving_in_thread(
    model: str | None, limits: Limits | None = None, batching: bool = True
) -> Iterator[str]:
    """The app on a real uvicorn server in a thread, on a free loopback port (model None: the
    bundled one); yields its base URL and stops it afterwards (tests, benches, screenshots)."""
    limits = limits or Limits()
    sock = bind("127.0.0.1", 0)
    app, scorer = build_app(model, "cpu", limits, batching)
    server = make_server(app, limits)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        scorer.close()
        sock.close()


def serve(
    host: str,
    port: int,
    *,
    model: str | None = None,
    device: str = "auto",
    limits: Limits | None = None,
    batching: bool = True,
    stats: Path | None = None,
    crops: bool = False,
    log: Any = print,
    history: Path | None = None,
    account: str | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl-C; uploads live in memory (or anonymous temporary files),
    so nothing is left behind."""
    limits = limits or Limits()
    sock = bind(host, port)
    try:
        app, scorer = build_app(model, device, limits, batching, stats, crops, history, account)
        if not is_loopback(host):
            log(
                f"warning: listening on {host}: anyone who can reach this machine can upload pictures."
            )
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
        log(
            f"imagion is serving on http://{shown}:{bound}/ (API: /api/score, docs: /docs; Ctrl-C stops)"
        )
        server = make_server(app, limits)
        try:
            server.run(sockets=[sock])
        finally:
            scorer.close()
    finally:
        sock.close()
