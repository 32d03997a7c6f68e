"""The upload page: serve."""

from __future__ import annotations

from typing import Annotated

import typer

from imagion.choices import Device
from imagion.cli.app import DeviceOpt, ModelOpt, StatsOpt, command
from imagion.cli.console import note
from imagion.cli.history_options import AccountOpt, HistoryOpt
from imagion.serve.limits import Limits

SERVE_HELP = (
    f"The upload page and JSON API: up to {Limits().max_files} pictures, a 0–10 score and a "
    "suggestion for each.\n\n"
    "With --history me.db, each card also shows your most similar past posts and how they "
    "scored.\n\n"
    "Example: imagion serve --port 8000   (then open http://127.0.0.1:8000; API docs at /docs)"
)


@command("serve", help=SERVE_HELP)
def serve_cmd(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback unless told).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8000,
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
    stats: StatsOpt = None,
    crop_advice: Annotated[
        bool,
        typer.Option(
            help="Also try Instagram's formats on each picture (about 7 more forward passes each)."
        ),
    ] = False,
    batching: Annotated[
        bool, typer.Option(help="Score concurrent requests in one forward pass.")
    ] = True,
    history: HistoryOpt = None,
    account: AccountOpt = None,
) -> None:
    """SERVE_HELP (the limit from `Limits`)."""
    from imagion.serve.runner import serve

    serve(
        host,
        port,
        stats=stats,
        crops=crop_advice,
        model=str(model) if model else None,
        device=str(device),
        batching=batching,
        log=note,
        history=history,
        account=account,
    )
