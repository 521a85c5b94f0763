"""`streamdesk approvals list|approve|reject`: supervisors decide high-risk writes from the shell."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from streamdesk import db
from streamdesk import terminal as output
from streamdesk.identity import service as identity
from streamdesk.policy import approvals

approvals_app = typer.Typer(help="High-risk writes waiting for a supervisor.", no_args_is_help=True)
console = Console(stderr=True)

OperatorOpt = Annotated[
    str,
    typer.Option("--as", envvar="STREAMDESK_OPERATOR", help="Your operator id (`streamdesk operators list`)."),
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why; kept in the audit trail.")]


@approvals_app.command("list")
def list_pending(
    status: Annotated[str, typer.Option(help="pending, approved, rejected, executed or all.")] = "pending",
    as_json: output.JsonOpt = False,
) -> None:
    """Show actions with the given status, oldest first."""
    if status not in ("pending", "approved", "rejected", "executed", "all"):
        raise typer.BadParameter(f"status {status!r} is unknown; use pending, approved, rejected, executed or all")
    wanted: Literal["pending", "approved", "rejected", "executed"] | None = None if status == "all" else status  # type: ignore[assignment]
    with db.connect(autocommit=True) as conn:
        actions = approvals.list_actions(conn, status=wanted, limit=1000)
    if as_json:
        output.print_json([action.model_dump(mode="json") for action in actions])
        return
    table = Table(title=f"{status} actions")
    for column in ("id", "ticket", "tool", "arguments", "proposer", "status", "reason", "created"):
        table.add_column(column)
    for a in actions:
        table.add_row(
            a.id,
            a.ticket_id,
            a.tool_name,
            json.dumps(a.arguments),
            a.proposer.id,
            a.status,
            a.reason,
            a.created_at.isoformat(timespec="seconds"),
        )
    Console().print(table)


def _decide(action_id: str, *, operator_id: str, note: str | None, approve: bool, as_json: bool) -> None:
    with output.refusals():
        principal = identity.operator(operator_id=operator_id)
        with db.connect(autocommit=True) as conn:
            decide = approvals.approve if approve else approvals.reject
            action = decide(conn, action_id=action_id, approver=principal, note=note)
    output.announce(
        action.model_dump(mode="json"),
        as_json=as_json,
        message=f"action {action.id} ({action.tool_name} on ticket {action.ticket_id}) is now {action.status}",
    )


@approvals_app.command("approve")
def approve_action(
    action_id: str, operator_id: OperatorOpt, note: NoteOpt = None, as_json: output.JsonOpt = False
) -> None:
    """Approve a pending action so the agent may execute it once."""
    _decide(action_id, operator_id=operator_id, note=note, approve=True, as_json=as_json)


@approvals_app.command("reject")
def reject_action(
    action_id: str, operator_id: OperatorOpt, note: NoteOpt = None, as_json: output.JsonOpt = False
) -> None:
    """Reject a pending action; it will never execute."""
    _decide(action_id, operator_id=operator_id, note=note, approve=False, as_json=as_json)
