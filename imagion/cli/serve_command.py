"""The upload page: serve."""

from __future__ import annotations

from typing import Annotated

import typer

from imagion.choices import Device
from imagion.cli.app import DeviceOpt, ModelOpt, command
from imagion.cli.console import note
from imagion.errors import ImagionError


@command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
) -> None:
    """The upload page: up to 5 pictures, a 0–10 score and a suggestion for each.

    Example: imagion serve --port 8000   (then open http://127.0.0.1:8000)
    """
    from imagion.inference.serve import make_server

    try:
        server = make_server(host, port, model=model, device=str(device))
    except OSError as exc:
        raise ImagionError(
            f"cannot listen on {host}:{port} ({exc.strerror}); try another --port."
        ) from None
    note(f"imagion is serving on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        note("stopped")
    finally:
        server.server_close()
