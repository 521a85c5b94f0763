"""The durable intake's bookkeeping on the real database: parts, processed marks, the relay's schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streamdesk import db
from streamdesk.config import get_settings
from streamdesk.contracts import DeadLetter
from streamdesk.gateway import intake
from streamdesk.gateway.relay import Relay
from streamdesk.ingest import processors
from streamdesk.streams.messages import RawMessage

pytestmark = pytest.mark.stack


def contact(event_id: int, object_id: int) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionType": "contact.creation",
        "objectId": object_id,
        "portalId": 62515,
        "occurredAt": 1733212800000 + event_id,
    }


def test_canonical_events_of_a_relayed_delivery_carry_its_id_and_their_part() -> None:
    two = RawMessage("raw.hubspot", json.dumps([contact(1, 11), contact(2, 12)]).encode(), headers={"intake-id": "7"})
    draft = json.dumps({"sys": {"id": "entry-7", "type": "Entry"}, "fields": {}}).encode()
    topic = {"x-contentful-topic": "ContentManagement.Entry.save"}
    none = RawMessage("raw.contentful", draft, headers={"intake-id": "8"} | topic, offset=1)
    direct = RawMessage("raw.hubspot", json.dumps([contact(3, 13)]).encode(), offset=2)
    result = processors.canonicalize([two, none, direct], max_body_bytes=100_000)
    parts = [{k: v for k, v in out.headers.items() if k.startswith("intake-")} for out in result.outgoing]
    assert parts == [
        {"intake-id": "7", "intake-part": "0", "intake-parts": "2"},
        {"intake-id": "7", "intake-part": "1", "intake-parts": "2"},
        {},
    ]
    assert result.finished == [{"intake-id": "8"} | topic]


def stored(conn: Any, *, delivery_id: str) -> int:
    return intake.store_delivery(
        conn=conn,
        source="hubspot",
        delivery_id=delivery_id,
        received_at=datetime.now(UTC),
        topic="raw.hubspot",
        key="11",
        headers={"source": "hubspot"},
        body=b"[]",
    )


def state(conn: Any, delivery: int) -> tuple[list[int], bool, bool]:
    row = conn.execute(
        "SELECT parts_done, processed_at IS NOT NULL, body IS NULL FROM webhook_deliveries WHERE id = %s", (delivery,)
    ).fetchone()
    return row[0], row[1], row[2]


def part(delivery: int, index: int, total: int) -> dict[str, str]:
    return {"intake-id": str(delivery), "intake-part": str(index), "intake-parts": str(total)}


def test_a_delivery_is_processed_once_every_part_is_durable_however_often_redelivered(clean_db: str) -> None:
    with db.connect(clean_db) as conn:
        two, whole, lettered = (stored(conn, delivery_id=name) for name in ("two", "whole", "lettered"))
        intake.record_done(conn=conn, headers=[part(two, 0, 2), {"traceparent": "x"}])
        intake.record_done(conn=conn, headers=[part(two, 0, 2)])  # a redelivered part counts once
        assert state(conn, two) == ([0], False, False)
        assert intake.unprocessed(conn=conn) == 3
        intake.record_done(conn=conn, headers=[part(two, 1, 2), {"intake-id": str(whole)}])
        assert state(conn, two) == ([0, 1], True, True)
        assert state(conn, whole) == ([], True, True)
        letter = DeadLetter(
            topic="raw.hubspot",
            partition=0,
            offset=3,
            headers={"intake-id": str(lettered)},
            reason="bad",
            error_type="ConnectorError",
            stage="raw",
        )
        intake.record_dead_letters(conn=conn, letters=[letter])
        assert state(conn, lettered) == ([], True, True)
        assert intake.unprocessed(conn=conn) == 0


def test_the_relay_republishes_what_is_not_processed_after_its_timeout(clean_db: str) -> None:
    with db.connect(clean_db) as conn:
        first, second = stored(conn, delivery_id="a"), stored(conn, delivery_id="b")
        due = intake.claim_due(conn=conn, limit=10, max_attempts=3)
        assert [d.id for d in due] == [first, second] and due[0].body == b"[]" and due[0].topic == "raw.hubspot"
        assert intake.mark_published(conn=conn, ids=[first, second], redeliver_after_s=3600, max_attempts=2) == []
        assert intake.claim_due(conn=conn, limit=10, max_attempts=3) == []
        assert intake.unprocessed(conn=conn, unpublished_only=True) == 0
        given_up = intake.mark_published(conn=conn, ids=[first], redeliver_after_s=0, max_attempts=2)  # due at once
        assert given_up == [first]
        assert [d.id for d in intake.claim_due(conn=conn, limit=10, max_attempts=3)] == [first]
        assert intake.claim_due(conn=conn, limit=10, max_attempts=2) == []  # gave up after two publishes
        assert intake.requeue(conn=conn) == 2  # a fresh, empty broker: everything unprocessed is due again
        assert [d.id for d in intake.claim_due(conn=conn, limit=10, max_attempts=2)] == [first, second]
        intake.record_done(conn=conn, headers=[{"intake-id": str(first)}])
        assert [d.id for d in intake.claim_due(conn=conn, limit=10, max_attempts=2)] == [second]


def test_the_relay_forgets_processed_deliveries_too_old_to_be_replayed(clean_db: str, topics_ready: str) -> None:
    old = datetime.now(UTC) - timedelta(seconds=2 * get_settings().gateway.tolerance_s + 120)
    with db.connect(clean_db) as conn:
        done, pending, recent = (stored(conn, delivery_id=name) for name in ("done", "pending", "recent"))
        conn.execute("UPDATE webhook_deliveries SET received_at = %s WHERE id <> %s", (old, recent))
        intake.record_done(conn=conn, headers=[{"intake-id": str(done)}, {"intake-id": str(recent)}])
        conn.commit()
    relay = Relay(settings=get_settings())
    try:
        assert relay.forget_old() == 1
    finally:
        relay.close()
    with db.connect(clean_db) as conn:
        assert sorted(row[0] for row in conn.execute("SELECT id FROM webhook_deliveries")) == [pending, recent]
