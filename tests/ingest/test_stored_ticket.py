"""The ticket hop hands the agent each ticket event only once it is stored, with the ticket as stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer

from streamdesk import contracts, topics
from streamdesk.contracts import Requester, StoredTicket, TicketEvent
from tests.ingest.conftest import IngestStack

pytestmark = [pytest.mark.slow, pytest.mark.stack]
NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def event(ticket_id: str, event_type: Any, version: int, **fields: Any) -> TicketEvent:
    return TicketEvent(
        event_id=f"zendesk:{ticket_id}:{event_type}", source="zendesk", ticket_id=ticket_id, event_type=event_type,
        version=[version], occurred_at=NOW, **fields,
    )  # fmt: skip


def test_each_stored_ticket_event_reaches_ticket_stored_after_its_row_is_committed(ingest_stack: IngestStack) -> None:
    ticket_id = f"T-{uuid.uuid4().hex[:8]}"
    created = event(ticket_id, "created", 1, subject="Where is my order?", body="Hi", requester=Requester(email="a@x"))
    comment = event(ticket_id, "comment_added", 2, body="Any news?")  # a comment repeats no subject
    consumer = Consumer(
        {
            "bootstrap.servers": ingest_stack.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topics.STORED_TICKET])
    received: list[tuple[StoredTicket, dict[str, bytes], list[tuple[Any, ...]]]] = []
    try:
        with ingest_stack.publisher() as publisher:
            for sent in (created, comment, created):  # the created event twice: a redelivery after a crash
                headers = {"traceparent": TRACEPARENT}
                publisher.publish(topics.TICKET, sent.to_json(), key=sent.key, headers=headers)
        for _ in range(240):
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            payload = json.loads(message.value())
            contracts.validate("ticket_stored.v1.json", payload)
            row = ingest_stack.query("SELECT subject, version FROM tickets WHERE ticket_id = %s", ticket_id)
            received.append((StoredTicket.model_validate(payload), dict(message.headers() or []), row))
            if len(received) == 3:
                break
    finally:
        consumer.close()
    sent_ids = [created.event_id, comment.event_id, created.event_id]
    assert [record.event.event_id for record, _, _ in received] == sent_ids, "each event, a redelivered one again"
    for record, headers, row in received:
        assert row, f"{record.event.event_id} reached ticket.stored before its tickets row was committed"
        assert headers["traceparent"].decode() == TRACEPARENT
    stored_comment = received[1][0]
    assert stored_comment.event.subject is None and stored_comment.ticket.subject == "Where is my order?"
    assert stored_comment.ticket.version == [2] and stored_comment.ticket.requester == Requester(email="a@x")
