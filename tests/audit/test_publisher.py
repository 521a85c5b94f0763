"""Records reach the `audit` topic of a real Tansu broker, in chain order, matching the contract."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from streamdesk import contracts, topics
from streamdesk.audit import publisher
from streamdesk.audit.models import AuditRecord
from streamdesk.audit.service import expected_hash
from streamdesk.kafka import Publisher


def ensure_audit_topic(bootstrap: str) -> None:
    """Create `audit` with one partition unless the registry already did."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if publisher.AUDIT_TOPIC not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(publisher.AUDIT_TOPIC, num_partitions=1, replication_factor=1)])[
            publisher.AUDIT_TOPIC
        ].result(10)


def read_all(bootstrap: str, *, expected: int, timeout_s: float = 20.0) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"audit-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([publisher.AUDIT_TOPIC])
    found: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(json.loads(message.value() or b"null"))
    finally:
        consumer.close()
    return found


def test_publish_since_relays_the_chain_in_order(broker: str, conn: psycopg.Connection, appended) -> None:
    topics.ensure_topics(broker)
    ensure_audit_topic(broker)
    appended(5)
    with Publisher(broker) as producer:
        assert publisher.publish_since(conn, publisher=producer, after_seq=0) == 5
        assert publisher.publish_since(conn, publisher=producer, after_seq=5) == 5
    received = read_all(broker, expected=5)
    assert [r["seq"] for r in received] == [1, 2, 3, 4, 5]
    for payload in received:
        contracts.validate("audit.v1.json", payload)
        record = AuditRecord.model_validate(payload)
        assert expected_hash(record) == record.record_hash
