"""Records reach the `audit` topic of a real Tansu broker through the audit relay, in chain order, matching the
contract, each once: a new relay carries on after the last record on the topic."""

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
from streamdesk.audit.relay import AuditRelay
from streamdesk.audit.service import expected_hash
from streamdesk.config import get_settings


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


def relay_all(relay: AuditRelay) -> int:
    """Run the relay's batches until nothing is left; return how many records it published."""
    try:
        return sum(iter(relay.relay_once, 0))
    finally:
        relay.close()


def test_the_audit_relay_publishes_the_chain_in_order_once(broker: str, conn: psycopg.Connection, appended) -> None:
    topics.ensure_topics(broker)
    ensure_audit_topic(broker)
    appended(3)
    assert relay_all(AuditRelay(settings=get_settings())) == 3
    appended(2)
    assert publisher.last_published_seq(broker) == 3
    assert relay_all(AuditRelay(settings=get_settings())) == 2  # a new relay starts after the topic's last record
    assert relay_all(AuditRelay(settings=get_settings())) == 0
    received = read_all(broker, expected=5)
    assert [r["seq"] for r in received] == [1, 2, 3, 4, 5]
    for payload in received:
        contracts.validate("audit.v1.json", payload)
        record = AuditRecord.model_validate(payload)
        assert expected_hash(record) == record.record_hash


def test_audit_relays_side_by_side_take_turns(broker: str, conn: psycopg.Connection, appended) -> None:
    topics.ensure_topics(broker)
    ensure_audit_topic(broker)
    appended(2)
    first, second = AuditRelay(settings=get_settings()), AuditRelay(settings=get_settings())
    try:
        assert first.relay_once() == 2
        appended(1)
        assert second.relay_once() == 0  # the first holds the turn
    finally:
        first.close()
    assert relay_all(second) == 1  # the turn passes on; it carries on after the topic's last record
    assert [r["seq"] for r in read_all(broker, expected=3)] == [1, 2, 3]
