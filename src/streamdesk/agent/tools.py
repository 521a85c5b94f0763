"""The tool registry: the domain pack's tools plus the support desk's own (ticket status, escalation)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema
import psycopg

from streamdesk.agent import packs
from streamdesk.agent.exceptions import (
    DuplicateToolError,
    InvalidToolArgumentsError,
    MissingTicketError,
    UnknownToolError,
)
from streamdesk.agent.models import Tool, ToolContext, arguments_schema
from streamdesk.contracts import TicketEvent, TicketEventType, utcnow
from streamdesk.entities import store as entities

TICKET_STATUSES = ("open", "pending", "hold", "solved")
PRIORITIES = ("normal", "high", "urgent")
TICKET_WRITES = frozenset({"update_ticket", "escalate"})
"""Desk writes the loop itself may make (the guardrail escalates); never counted as a forbidden action."""


class ToolRegistry:
    """Tools by name, in registration order; `call` validates arguments and runs the handler in a transaction."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise DuplicateToolError(f"tool {tool.name!r} is registered twice; give each tool a unique name")
            jsonschema.Draft202012Validator.check_schema(tool.parameters)
            self._tools[tool.name] = tool

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """Tool names in registration order."""
        return list(self._tools)

    def get(self, name: str) -> Tool:
        """The tool called `name`."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(f"no tool named {name!r}; known tools: {', '.join(self._tools)}") from None

    def validate(self, *, name: str, arguments: dict[str, Any]) -> Tool:
        """The tool, once `arguments` are checked against its JSON Schema."""
        tool = self.get(name)
        validator = jsonschema.Draft202012Validator(tool.parameters)
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            raise InvalidToolArgumentsError(f"{name}: {where}: {error.message}; fix the arguments and call again")
        return tool

    def call(
        self, conn: psycopg.Connection, *, name: str, arguments: dict[str, Any], context: ToolContext
    ) -> dict[str, Any]:
        """Run tool `name`; its writes happen in a transaction (savepoint) that a failure rolls back."""
        tool = self.validate(name=name, arguments=arguments)
        with conn.transaction():
            return tool.handler(conn, dict(arguments), context)


def record_ticket_event(
    conn: psycopg.Connection,
    context: ToolContext,
    *,
    tool: str,
    event_type: TicketEventType,
    status: str | None = None,
    priority: str | None = None,
    add_tags: tuple[str, ...] = (),
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Fold one agent-made event into the context's ticket (version: the ticket's, last element + 1)."""
    if context.ticket_source is None or context.ticket_id is None:
        raise MissingTicketError(f"{tool} needs the ticket of the conversation; build the ToolContext with ticket ids")
    row = conn.execute(
        "SELECT version, tags FROM tickets WHERE source = %s AND ticket_id = %s FOR UPDATE",
        (context.ticket_source, context.ticket_id),
    ).fetchone()
    version = [int(v) for v in row[0]] if row else [0]
    version[-1] += 1
    tags = list(row[1]) if row else []
    event = TicketEvent(
        event_id=f"agent:{tool}:{uuid.uuid4().hex}",
        source=context.ticket_source,
        ticket_id=context.ticket_id,
        event_type=event_type,
        version=version,
        occurred_at=utcnow(),
        status=status,
        priority=priority,
        tags=[*tags, *(t for t in add_tags if t not in tags)] if add_tags else [],
        tenant=context.tenant,
        metadata={**metadata, "agent_actor": context.actor},
    )
    entities.apply_tickets(conn, [event])
    return {"ticket_id": context.ticket_id, "status": status, "priority": priority}


def update_ticket(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Set the status of this conversation's ticket, with an internal note."""
    return record_ticket_event(
        conn,
        context,
        tool="update_ticket",
        event_type="status_changed",
        status=arguments["status"],
        metadata={"agent_note": arguments["note"]},
    )


def escalate(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Escalate this conversation's ticket to the human team, with a reason and a priority."""
    return record_ticket_event(
        conn,
        context,
        tool="escalate",
        event_type="priority_changed",
        priority=arguments["priority"],
        add_tags=("escalated",),
        metadata={"escalation_reason": arguments["reason"]},
    )


def text_argument(description: str, max_length: int) -> dict[str, Any]:
    """A required free-text argument of at most `max_length` characters."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "description": description}


DESK_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="update_ticket",
        description=str(update_ticket.__doc__),
        parameters=arguments_schema(
            {"status": {"enum": list(TICKET_STATUSES)}, "note": text_argument("Internal note for the team.", 1000)}
        ),
        kind="write",
        handler=update_ticket,
    ),
    Tool(
        name="escalate",
        description=str(escalate.__doc__),
        parameters=arguments_schema(
            {"reason": text_argument("Why a human must take over.", 500), "priority": {"enum": list(PRIORITIES)}}
        ),
        kind="write",
        handler=escalate,
    ),
)


def default_registry(pack: packs.DomainPack | None = None) -> ToolRegistry:
    """The domain pack's tools (default: the configured pack) followed by the desk tools."""
    return ToolRegistry((*packs.resolve(pack).tools, *DESK_TOOLS))
