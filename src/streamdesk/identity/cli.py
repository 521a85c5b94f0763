"""`streamdesk operators add|list|revoke|first-run`: the people who may use the API and the console."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from streamdesk import db
from streamdesk import terminal as output
from streamdesk.config import get_settings
from streamdesk.identity import first_run, operators
from streamdesk.identity import service as identity
from streamdesk.identity.config import get_identity_settings
from streamdesk.identity.models import Role

operators_app = typer.Typer(
    help="Operators stored in the database (hashed tokens), beside STREAMDESK_IDENTITY__OPERATORS.",
    no_args_is_help=True,
)
console = Console(stderr=True)
PEOPLE_ROLES = [role for role in Role if role is not Role.SERVICE_AGENT]


@operators_app.command("add")
def add(
    operator_id: Annotated[str, typer.Argument(help="The operator's id, e.g. alice.")],
    role: Annotated[list[Role], typer.Option("--role", help="A role to hold (repeat for several).")],
    group: Annotated[
        list[str] | None, typer.Option("--group", help="A group for document access (repeatable).")
    ] = None,
    tenant: Annotated[str, typer.Option(help="The tenant the operator belongs to.")] = "default",
    as_json: output.JsonOpt = False,
) -> None:
    """Issue an operator and print their token, once: only its SHA-256 is stored."""
    if Role.SERVICE_AGENT in role:
        raise typer.BadParameter(f"service_agent belongs to the agent; use {', '.join(PEOPLE_ROLES)}")
    with output.refusals(), db.transaction() as conn:
        stored, token = identity.add_operator(
            conn, operator_id=operator_id, roles=role, groups=group or [], tenant=tenant
        )
    if as_json:
        output.print_json({**stored.model_dump(mode="json"), "token": token})
        return
    console.print(f"operator {stored.operator_id} added ({', '.join(stored.roles)}); their token, shown only now:")
    typer.echo(token)


@operators_app.command("list")
def list_operators(
    include_revoked: Annotated[bool, typer.Option("--all", help="Also show revoked operators.")] = False,
    as_json: output.JsonOpt = False,
) -> None:
    """Show the operators (environment-configured and stored); tokens are never shown."""
    rows = [
        {"operator_id": operator_id, "source": "environment", "roles": [str(r) for r in configured.roles],
         "groups": configured.groups, "tenant": configured.tenant, "created_at": None, "revoked_at": None}
        for operator_id, configured in sorted(get_identity_settings().operators.items())
    ]  # fmt: skip
    with output.refusals(), db.connect(autocommit=True) as conn:
        stored = operators.list_stored(conn, include_revoked=include_revoked)
    rows += [{**item.model_dump(mode="json"), "source": "database"} for item in stored]
    columns = ["operator_id", "source", "roles", "groups", "tenant", "created_at", "revoked_at"]
    output.emit_rows(rows, as_json=as_json, title="operators", columns=columns)


@operators_app.command("revoke")
def revoke(
    operator_id: Annotated[str, typer.Argument(help="The stored operator to revoke.")],
    as_json: output.JsonOpt = False,
) -> None:
    """Revoke a stored operator: their token is refused from the next request on, console sign-ins end."""
    if operator_id in get_identity_settings().operators:
        console.print(f"refused: {operator_id} is configured in STREAMDESK_IDENTITY__OPERATORS; remove it there")
        raise typer.Exit(code=1)
    with output.refusals(), db.transaction() as conn:
        revoked = operators.revoke(conn, operator_id=operator_id)
    output.announce(revoked.model_dump(mode="json"), as_json=as_json, message=f"operator {operator_id} revoked")


@operators_app.command("first-run")
def first_admin() -> None:
    """Create the first admin when no operator exists (what `streamdesk up` does); print its token once."""
    with output.refusals(), db.transaction() as conn:
        outcome = first_run.ensure_first_admin(conn, state_dir=get_settings().state_dir)
    if outcome is None:
        console.print("operators exist already; nothing to do")
        return
    console.print(outcome.describe(), markup=False, highlight=False, soft_wrap=True)
