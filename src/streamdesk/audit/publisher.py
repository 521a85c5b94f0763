"""Publish audit records to the `audit` topic, so a copy of the chain lives outside the database.

Records are keyed by tenant and the topic has one partition, so consumers see the chain in order and
can re-verify it. Publishing happens after the records commit: `publish_since` relays everything
after the last sequence number the caller published.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from streamdesk import contracts
from streamdesk.audit import service
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


def publish_since(conn: psycopg.Connection, *, publisher: Publisher, after_seq: int, batch: int = 1000) -> int:
    """Publish every record after `after_seq` and wait for the broker; return the last seq published."""
    last = after_seq
    while True:
        records = service.records_after(conn, after_seq=last, limit=batch)
        if not records:
            break
        publish_records(records=records, publisher=publisher)
        last = records[-1].seq
    publisher.flush()
    return last
