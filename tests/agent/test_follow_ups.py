"""Follow-ups on the real broker and database: a command nothing confirms is escalated and the customer told."""

from __future__ import annotations

import psycopg

from streamdesk.agent import answers, follow_ups
from streamdesk.commands import service
from streamdesk.commands.config import CommandSettings
from streamdesk.commands.models import Command, RowChange
from streamdesk.commands.relay import CommandRelay
from streamdesk.config import get_settings
from tests.factories import stored_ticket


def test_a_command_with_no_change_back_in_time_is_escalated_with_one_follow_up(
    conn: psycopg.Connection, topics_ready: str
) -> None:
    change = RowChange(table="orders", entity_type="order", id="#W1", set={"status": "cancelled"})
    command = Command(
        idempotency_key="k-late", system="erp", tool="cancel_pending_order", arguments={}, changes=[change],
        ticket_id="zendesk:T-9",
    )  # fmt: skip
    stored_ticket(conn, "T-9")
    conn.commit()
    service.enqueue(conn, command=command)
    conn.commit()
    relay = CommandRelay(
        settings=get_settings(), follow_up=follow_ups.follow_up, command_settings=CommandSettings(confirm_timeout_s=0)
    )
    try:
        assert relay.relay_once() == 1 and relay.relay_once() == 0
        relay.tidy()
        relay.tidy()
    finally:
        relay.close()
    tracked = service.get(conn, idempotency_key="k-late")
    assert tracked is not None and tracked.status == "escalated" and tracked.published_at is not None
    [answer] = answers.answers_for_ticket(conn, source="zendesk", ticket_id="T-9")
    assert answer.event_id == "follow-up:k-late:escalated" and answer.status == "auto_reply"
    assert "taking longer than expected" in answer.text
    assert answers.is_published(conn, answer_id=answer.answer_id)
    ticket = conn.execute("SELECT tags, priority FROM tickets WHERE ticket_id = 'T-9'").fetchone()
    assert ticket is not None and "escalated" in ticket[0] and ticket[1] == "high"
    assert service.requeue(conn) == 1 and [c.idempotency_key for c in service.unpublished(conn, limit=5)] == ["k-late"]
