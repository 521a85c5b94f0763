"""Ticket store: events recorded once, folded into tickets field by field in version order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from streamdesk.contracts import Requester, TicketEvent
from streamdesk.entities import store

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def ticket_event(event_type: str, version: int, **fields: Any) -> TicketEvent:
    return TicketEvent(
        event_id=fields.pop("event_id", str(uuid.uuid4())),
        source="zendesk",
        ticket_id=fields.pop("ticket_id", "t1"),
        event_type=event_type,
        version=[version],
        occurred_at=T0 + timedelta(minutes=version),
        **fields,
    )


def apply(conn: psycopg.Connection, events: list[TicketEvent]) -> store.TicketStats:
    stats = store.apply_tickets(conn, events)
    conn.commit()
    return stats


def ticket(conn: psycopg.Connection, ticket_id: str = "t1") -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        found = cur.execute("SELECT * FROM tickets WHERE ticket_id = %s", (ticket_id,)).fetchone()
    assert found is not None
    return found


def created() -> TicketEvent:
    return ticket_event(
        "created",
        1,
        subject="Card declined",
        body="My card is declined at checkout.",
        status="new",
        priority="low",
        requester=Requester(id="u1", name="Ann", email="ann@example.com"),
        customer_id="c1",
        tags=["billing"],
        metadata={"channel": "email"},
    )


def test_events_fold_into_the_ticket(conn: psycopg.Connection) -> None:
    events = [
        created(),
        ticket_event("status_changed", 2, status="open"),
        ticket_event("comment_added", 3, body="Any news?"),
        ticket_event("priority_changed", 4, priority="high", tags=["billing", "urgent"], metadata={"sla": "4h"}),
        ticket_event("assignment_changed", 5, assignee_id="agent-7"),
    ]
    stats = apply(conn, events)
    assert (stats.events_inserted, stats.duplicates, stats.tickets_updated) == (5, 0, 1)
    row = ticket(conn)
    assert (row["subject"], row["status"], row["priority"], row["assignee_id"], row["customer_id"]) == (
        "Card declined",
        "open",
        "high",
        "agent-7",
        "c1",
    )
    assert row["requester"] == {"id": "u1", "name": "Ann", "email": "ann@example.com"}
    assert row["tags"] == ["billing", "urgent"] and row["metadata"] == {"channel": "email", "sla": "4h"}
    assert row["version"] == [5] and row["created_at"] == T0 + timedelta(minutes=1)
    bodies = conn.execute("SELECT body FROM ticket_events ORDER BY version").fetchall()
    assert bodies[0] == ("My card is declined at checkout.",) and bodies[2] == ("Any news?",)


def test_an_older_event_never_overwrites_newer_fields(conn: psycopg.Connection) -> None:
    apply(conn, [created(), ticket_event("status_changed", 5, status="solved")])
    late = ticket_event("updated", 3, status="pending", assignee_id="agent-2")
    apply(conn, [late])
    row = ticket(conn)
    assert row["status"] == "solved", "v3's status is older than v5's"
    assert row["assignee_id"] == "agent-2", "no newer event set the assignee"
    assert row["version"] == [5]


def test_created_at_comes_from_the_created_event_even_when_it_arrives_last(conn: psycopg.Connection) -> None:
    apply(conn, [ticket_event("status_changed", 2, status="open")])
    assert ticket(conn)["created_at"] == T0 + timedelta(minutes=2)
    apply(conn, [created()])
    row = ticket(conn)
    assert row["created_at"] == T0 + timedelta(minutes=1)
    assert (row["status"], row["subject"]) == ("open", "Card declined")


def test_events_are_recorded_once(conn: psycopg.Connection) -> None:
    events = [created(), ticket_event("status_changed", 2, status="open")]
    apply(conn, events)
    before = ticket(conn)
    stats = apply(conn, [*events, events[1]])
    assert (stats.events_inserted, stats.duplicates, stats.tickets_updated) == (0, 3, 0)
    assert conn.execute("SELECT count(*) FROM ticket_events").fetchone() == (2,)
    assert ticket(conn) == before


def test_a_batch_updates_many_tickets(conn: psycopg.Connection) -> None:
    events = [ticket_event("created", 1, ticket_id=f"t{i}", subject=f"s{i}", status="new") for i in range(300)]
    events += [ticket_event("status_changed", 2, ticket_id=f"t{i}", status="open") for i in range(0, 300, 2)]
    stats = apply(conn, events)
    assert (stats.events_inserted, stats.tickets_updated) == (450, 300)
    statuses: dict[str, int] = dict(conn.execute("SELECT status, count(*) FROM tickets GROUP BY status").fetchall())
    assert statuses == {"open": 150, "new": 150}
