"""The drain `streamdesk up` runs on stop, on the real broker and database: it waits within its bound and says why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.audit.relay import AuditRelay
from streamdesk.config import get_settings
from streamdesk.gateway import intake
from streamdesk.kafka import Publisher
from streamdesk.runtime.drain import drain

pytestmark = pytest.mark.stack


def test_nothing_in_flight_is_drained_at_once(topics_ready: str, clean_db: str) -> None:
    result = drain(bootstrap_servers=topics_ready, database_url=clean_db, timeout_s=30, quiet_s=0)
    assert result.drained and result.seconds < 15 and not result.lag and result.unpublished_webhooks == 0
    assert result.unpublished_audit == 0


def test_unconsumed_events_and_unpublished_webhooks_hold_the_drain_until_its_bound(
    topics_ready: str, clean_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Publisher(topics_ready) as publisher:
        publisher.publish("raw.zendesk", b"{}", key="1")
    with db.connect(clean_db) as conn:
        intake.store_delivery(
            conn=conn,
            source="zendesk",
            delivery_id="d",
            received_at=datetime.now(UTC),
            topic="raw.zendesk",
            key="1",
            headers={},
            body=b"{}",
        )
        conn.commit()
    result = drain(bootstrap_servers=topics_ready, database_url=clean_db, timeout_s=1.5, quiet_s=0)
    assert not result.drained and result.seconds >= 1.5
    assert result.lag == {"raw.zendesk": 1} and result.unpublished_webhooks == 1
    assert "drain timed out after" in caplog.text and "1 webhooks and 0 audit records unpublished" in caplog.text


def test_audit_records_not_on_the_audit_topic_hold_the_drain_until_the_audit_relay_publishes_them(
    topics_ready: str, clean_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with db.connect(clean_db, autocommit=True) as conn:
        for n in range(2):
            event = AuditEvent(action=AuditAction.RBAC_DECISION, ticket_id=f"T-{n}", tenant="default", decision="deny")
            audit.append(conn, event=event)
    held = drain(bootstrap_servers=topics_ready, database_url=clean_db, timeout_s=1.5, quiet_s=0)
    assert not held.drained and held.unpublished_audit == 2 and held.unpublished_webhooks == 0
    assert "0 webhooks and 2 audit records unpublished" in caplog.text
    relay = AuditRelay(settings=get_settings())
    try:
        assert relay.relay_once() == 2
    finally:
        relay.close()
    result = drain(bootstrap_servers=topics_ready, database_url=clean_db, timeout_s=30, quiet_s=0)
    assert result.drained and result.unpublished_audit == 0
