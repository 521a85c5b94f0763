"""`streamdesk standin zendesk`: serve the local Zendesk stand-in (`delivery/standin.py`) in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

standin_app = typer.Typer(help="Local stand-ins for vendor systems (not the vendors), for tests and local runs.")


@standin_app.command("zendesk")
def standin_zendesk(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8204,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    received: Annotated[Path | None, typer.Option(help="Append each request received to this JSON-lines file.")] = None,
    delay_s: Annotated[float, typer.Option(help="Wait this long in each ticket update (a slow helpdesk).")] = 0.0,
) -> None:
    """Serve the Zendesk stand-in: ticket updates (comment and status) and comments, checked as Zendesk documents."""
    from streamdesk.delivery import standin

    standin.serve(host=host, port=port, received_path=received, delay_s=delay_s)
