"""Builders shared across the test packages: ticket events, draft answers and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from streamdesk.agent import answers
from streamdesk.agent.answers import Answer
from streamdesk.contracts import DeadLetter, TicketEvent
from streamdesk.entities import store as tickets
from streamdesk.streams.deadletter import store_dead_letters

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def ticket_event(ticket_id: str, *, event_id: str | None = None, **fields: Any) -> TicketEvent:
    """A `created` zendesk ticket event at version [1], `evt-<ticket_id>` unless `event_id` is given."""
    defaults: dict[str, Any] = {"source": "zendesk", "event_type": "created", "version": [1], "occurred_at": T0}
    return TicketEvent(event_id=event_id or f"evt-{ticket_id}", ticket_id=ticket_id, **(defaults | fields))


def stored_ticket(conn: psycopg.Connection, ticket_id: str, **fields: Any) -> TicketEvent:
    """`ticket_event(ticket_id, **fields)`, stored through the ticket store."""
    event = ticket_event(ticket_id, **fields)
    tickets.apply_tickets(conn, [event])
    return event


def draft(ticket: TicketEvent, text: str, **fields: Any) -> Answer:
    """The agent's draft answer to `ticket`."""
    defaults: dict[str, Any] = {"status": "draft", "model": "smollm2-135m-instruct", "prompt_version": "support-v1"}
    return Answer(
        event_id=ticket.event_id, source=ticket.source, ticket_id=ticket.ticket_id, text=text, **(defaults | fields)
    )


def stored_draft(conn: psycopg.Connection, ticket: TicketEvent, text: str, **fields: Any) -> Answer:
    """`draft(ticket, text, **fields)`, stored through the answers store (the stored copy is returned)."""
    stored, _ = answers.store_answer(conn, answer=draft(ticket, text, **fields))
    return stored


def stored_dead_letter(conn: psycopg.Connection, **fields: Any) -> None:
    """A dead letter of the raw stage of `raw.zendesk` (partition 0), stored through the dead-letter store."""
    defaults: dict[str, Any] = {"topic": "raw.zendesk", "partition": 0, "stage": "raw"}
    store_dead_letters(conn, letters=[DeadLetter(**(defaults | fields))])
