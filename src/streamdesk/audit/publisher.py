"""Publish audit records to the `audit` topic, so a copy of the chain lives outside the database.

Records are keyed by tenant and the topic has one partition, so consumers see the chain in order and
can re-verify it. Publishing happens after the records commit, by the audit relay (`audit/relay.py`),
which starts after the last sequence number on the topic (`last_published_seq`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from streamdesk import contracts, telemetry
from streamdesk.audit.models import AuditRecord
from streamdesk.kafka import Publisher

AUDIT_TOPIC = "audit"
AUDIT_SCHEMA = "audit.v1.json"


def publish_records(*, records: Iterable[AuditRecord], publisher: Publisher) -> int:
    """Validate each record against `audit.v1.json` and queue it on the audit topic; return how many."""
    count = 0
    for record in records:
        payload = record.to_json()
        contracts.validate(AUDIT_SCHEMA, payload)
        publisher.publish(AUDIT_TOPIC, payload, key=record.tenant, headers={"seq": str(record.seq)}, validate=False)
        count += 1
    return count


def last_published_seq(bootstrap_servers: str, *, timeout_s: float = 10.0) -> int:
    """The `seq` header of the last record on the audit topic (0 when it is empty).

    Reads on from the record before the high watermark until the partition is quiet: Tansu reports the
    first record of the last batch as the high watermark, so records can follow it.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "streamdesk-audit-relay-probe",
            "enable.auto.commit": False,
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(AUDIT_TOPIC, 0), timeout=timeout_s)
        if high <= low:
            return 0
        consumer.assign([TopicPartition(AUDIT_TOPIC, 0, high - 1)])
        last: int | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None and last is not None:
                return last
            if message is not None and message.error() is None:
                last = int(telemetry.header_map(message.headers()).get("seq", "0"))
        if last is not None:  # still records coming: the last one read will do, the relay reads on from there
            return last
        raise TimeoutError(f"could not read the last audit record within {timeout_s}s; is the broker up?")
    finally:
        consumer.close()
