"""`streamdesk audit show|verify|export|checkpoint`: read and check the audit trail from the shell."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamdesk import db
from streamdesk import terminal as output
from streamdesk.audit import service

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
console = Console(stderr=True)


@audit_app.command("show")
def show(
    ticket: Annotated[str, typer.Option("--ticket", help="Ticket id whose trail to reconstruct.")],
    as_json: output.JsonOpt = False,
) -> None:
    """Reconstruct the whole trail of one ticket, in order."""
    with db.connect() as conn:
        records = service.trail(conn, ticket_id=ticket)
    if as_json:
        output.print_json([record.to_json() for record in records])
        return
    if not records:
        console.print(f"no audit records for ticket {ticket!r}")
        raise typer.Exit(code=1)
    table = Table(title=f"audit trail of ticket {ticket}")
    for column in ("seq", "occurred", "action", "actor", "role", "approver", "tool", "decision", "reason"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(
            str(r.seq),
            r.occurred_at.isoformat(timespec="seconds"),
            str(r.action),
            r.actor_id or "-",
            ",".join(r.roles) or "-",
            r.approver_id or "-",
            r.tool_name or "-",
            r.decision or "-",
            r.reason or "",
        )
    Console().print(table)


@audit_app.command("verify")
def verify_chain(
    as_json: output.JsonOpt = False,
) -> None:
    """Check the whole chain and its checkpoints; exit 1 naming the first broken record."""
    with db.connect() as conn:
        report = service.verify(conn)
    if as_json:
        output.print_json(report.to_json())
    if not report.ok:
        console.print(f"audit chain BROKEN at record {report.first_broken_seq}: {report.reason}")
        raise typer.Exit(code=1)
    console.print(f"audit chain intact: {report.checked} records, {report.checkpoints} checkpoints")


@audit_app.command("export")
def export_records(
    ticket: Annotated[str | None, typer.Option("--ticket", help="Only this ticket's records.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File to write; default stdout.")] = None,
) -> None:
    """Write the records as JSON lines, hashes included, so they can be verified elsewhere."""
    with db.connect() as conn:
        if out is None:
            count = service.export(conn, out=sys.stdout, ticket_id=ticket)
        else:
            with out.open("w", encoding="utf-8") as handle:
                count = service.export(conn, out=handle, ticket_id=ticket)
    console.print(f"exported {count} audit records" + (f" to {out}" if out else ""))


@audit_app.command("checkpoint")
def checkpoint_now(
    as_json: output.JsonOpt = False,
    adopt_head: Annotated[
        bool,
        typer.Option(
            "--adopt-head",
            help="Also sign the last record as the chain's head when the head is missing, forged or names another "
            "record (a trail from before migration 0010, or a repair); run `audit verify` first.",
        ),
    ] = False,
) -> None:
    """Store a signed checkpoint of the chain's last record now."""
    with db.connect() as conn:
        stored = service.checkpoint(conn, adopt_head=adopt_head)
        conn.commit()
    if as_json:
        output.print_json({"seq": None, "record_hash": None} if stored is None else dataclasses.asdict(stored))
        return
    console.print("chain is empty; nothing to checkpoint" if stored is None else f"checkpoint at record {stored.seq}")
