"""On a fresh embedded broker, stored ticket events without a published answer go back to the agent's input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from streamdesk import db, topics
from streamdesk.agent import recovery
from streamdesk.contracts import StoredTicket, TicketEvent
from streamdesk.entities import store as entities
from streamdesk.kafka import Publisher
from tests.agent.test_worker import read_topic

pytestmark = pytest.mark.stack


def event(event_id: str, event_type: Any, version: int, **fields: Any) -> TicketEvent:
    at = datetime(2026, 12, 3, 7, version, tzinfo=UTC)
    return TicketEvent(
        event_id=event_id, source="zendesk", ticket_id="T-3", event_type=event_type, version=[version],
        occurred_at=at, **fields,
    )  # fmt: skip


def test_unanswered_ticket_events_are_republished_to_ticket_stored_with_their_stored_ticket(
    topics_ready: str, clean_db: str
) -> None:
    stored = [
        event("zendesk:T-3:created", "created", 1, subject="Where is my order?", body="Hi", customer_id="c_1"),
        event("zendesk:T-3:status", "status_changed", 2, status="open"),  # not a question for the agent
        event("agent:update_ticket:1", "comment_added", 3, body="noted"),  # the agent's own note
        event("zendesk:T-3:comment", "comment_added", 4, body="Any news?"),
    ]
    with db.connect(clean_db) as conn:
        entities.apply_tickets(conn, stored)
        conn.commit()
        with Publisher(topics_ready, client_id="tests") as publisher:
            assert recovery.republish_unanswered(conn=conn, publisher=publisher) == 2
    messages = read_topic(topics_ready, topics.STORED_TICKET, until=lambda found: len(found) >= 2, timeout_s=30)
    records = [StoredTicket.model_validate(json.loads(message.value())) for message in messages]
    assert [record.event.event_id for record in records] == ["zendesk:T-3:created", "zendesk:T-3:comment"]
    assert {message.key() for message in messages} == {b"zendesk:T-3"}
    comment = records[1]
    assert comment.event.subject is None and comment.ticket.subject == "Where is my order?"
    assert comment.ticket.status == "open" and comment.ticket.customer_id == "c_1" and comment.ticket.version == [4]
