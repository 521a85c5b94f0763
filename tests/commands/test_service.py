"""The command outbox on the real database: one command per key, confirmation by CDC, failure, escalation."""

from __future__ import annotations

import psycopg
import pytest

from streamdesk.commands import service
from streamdesk.commands.exceptions import UnknownSystemError
from streamdesk.commands.models import Command, RowChange
from streamdesk.contracts import EntityEvent, utcnow

ORDER = RowChange(table="orders", entity_type="order", id="#W1", set={"status": "cancelled"}, expect={"status": "p"})
CUSTOMER = RowChange(table="customers", entity_type="customer", id="u1", set={"zip": "1"}, expect={"zip": "0"})


def command(key: str = "k1", *changes: RowChange, system: str = "erp") -> Command:
    return Command(
        idempotency_key=key,
        system=system,
        tool="cancel",
        arguments={"order_id": "#W1"},
        changes=list(changes or (ORDER, CUSTOMER)),
        ticket_id="zendesk:7",
    )


def came_back(entity_type: str, external_id: str, *, key: str) -> EntityEvent:
    """The entity event the CDC ingest stores for a row the system of record changed under command `key`."""
    return EntityEvent(
        event_id=f"debezium:{entity_type}:{external_id}",
        source="debezium",
        entity_type=entity_type,  # type: ignore[arg-type]
        external_id=external_id,
        op="upsert",
        version=[1 << 36, 1],
        occurred_at=utcnow(),
        attributes={"command_key": key},
    )


def test_capture_merges_the_changes_of_one_row_and_nothing_is_recorded_outside_it() -> None:
    assert service.record(ORDER) is False
    with service.capture() as changes:
        assert service.record(ORDER)
        assert service.record(ORDER.model_copy(update={"set": {"reason": "x"}, "expect": {"status": "q"}}))
    assert changes == [ORDER.model_copy(update={"set": {"status": "cancelled", "reason": "x"}})]


def test_a_key_is_enqueued_once_and_an_unregistered_system_is_refused(conn: psycopg.Connection) -> None:
    assert service.enqueue(conn, command=command()) is True
    assert service.enqueue(conn, command=command()) is False
    assert [c.idempotency_key for c in service.unpublished(conn, limit=10)] == ["k1"]
    with pytest.raises(UnknownSystemError, match=r"command\.crm"):
        service.enqueue(conn, command=command("k2", system="crm"))


def test_a_command_is_confirmed_once_every_row_it_changed_came_back(conn: psycopg.Connection) -> None:
    service.enqueue(conn, command=command())
    assert service.confirm_changes(conn, [came_back("order", "#W1", key="k1")]) == []
    assert service.confirm_changes(conn, [came_back("customer", "u1", key="other")]) == []
    assert service.confirm_changes(conn, [came_back("customer", "u1", key="k1")]) == ["k1"]
    tracked = service.get(conn, idempotency_key="k1")
    assert tracked is not None and tracked.status == "confirmed" and tracked.awaiting == []
    assert service.fail(conn, idempotency_key="k1", reason="too late") is False


def test_overdue_commands_escalate_and_a_late_change_still_confirms(conn: psycopg.Connection) -> None:
    service.enqueue(conn, command=command("k3", ORDER))
    assert service.escalate_overdue(conn, older_than_s=3600) == []
    assert service.escalate_overdue(conn, older_than_s=0) == ["k3"]
    assert [(t.command.idempotency_key, t.status) for t in service.awaiting_follow_up(conn)] == [("k3", "escalated")]
    service.mark_followed_up(conn, idempotency_key="k3", status="escalated")
    assert service.awaiting_follow_up(conn) == []
    assert service.confirm_changes(conn, [came_back("order", "#W1", key="k3")]) == ["k3"]
    assert [(t.command.idempotency_key, t.status) for t in service.awaiting_follow_up(conn)] == [("k3", "confirmed")]
