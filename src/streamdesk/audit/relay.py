"""The audit relay (`streamdesk worker audit-relay`): committed audit records -> the `audit` topic, in chain order.

Whoever appends a record (the API, the agent, the CLI) only commits it; this worker publishes it, on the
outbox-relay base (`streams/relay.py`), woken by the NOTIFY that `audit.service.append` sends at commit.
Its position is the `seq` header of the last record on the topic, read at start and after a failed flush,
so a new, empty broker gets the whole chain again and a record is published at least once, in order.
Relays side by side take turns: one holds a PostgreSQL advisory lock and publishes, the others wait for it.
"""

from __future__ import annotations

import logging

import psycopg
from confluent_kafka import KafkaException

from streamdesk.audit import publisher, service
from streamdesk.audit.config import AuditSettings, get_audit_settings
from streamdesk.config import Settings, get_settings
from streamdesk.kafka import PublishError
from streamdesk.streams.relay import OutboxRelay, run_relay

log = logging.getLogger(__name__)
RELAY_LOCK = 0x5D0A0D18
"""The session advisory lock the publishing audit relay holds (one publisher keeps the topic in chain order)."""


class AuditRelay(OutboxRelay):
    """Publishes the records after the last one on the `audit` topic, a batch per broker flush."""

    name = "audit-relay"
    channel = service.CHANNEL

    def __init__(self, *, settings: Settings, audit_settings: AuditSettings | None = None) -> None:
        audit_settings = audit_settings or get_audit_settings()
        super().__init__(settings=settings, interval_s=audit_settings.relay_interval_s)
        self.batch = audit_settings.relay_batch
        self.after_seq: int | None = None
        """The last seq the topic holds (None: read it from the topic before the next batch)."""
        self.leading = False
        """Whether this relay holds `RELAY_LOCK` on its connection."""

    def connected(self) -> None:
        """A new connection holds no lock yet."""
        self.leading = False

    def lead(self) -> bool:
        """Take the publishing turn if no other audit relay holds it; the position is read afresh on taking it."""
        conn = self.conn
        if not self.leading:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK,)).fetchone()
            self.leading = bool(row and row[0])
            if self.leading:
                self.after_seq = None
                log.info("audit relay publishing (it holds the audit relay lock)")
        return self.leading

    def position(self) -> int:
        """The last seq on the topic, read from the broker when not known; PublishError while it is unreachable."""
        if self.after_seq is None:
            try:
                self.after_seq = publisher.last_published_seq(self.settings.kafka.bootstrap_servers or "")
            except (KafkaException, TimeoutError) as exc:
                raise PublishError(
                    f"could not read the last record on the {publisher.AUDIT_TOPIC!r} topic: {exc}"
                ) from exc
        return self.after_seq

    def close(self) -> None:
        """Hand the publishing turn over at once (not when the server notices the closed session), then close."""
        if self.leading and self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LOCK,))
            except psycopg.Error as exc:  # the session's end releases it anyway
                log.warning("audit relay could not release its lock before closing: %s", exc)
        self.leading = False
        super().close()

    def relay_once(self) -> int:
        """Publish the next batch of records and wait for the broker; return how many (0 while another relay leads)."""
        if not self.lead():
            return 0
        records = service.records_after(self.conn, after_seq=self.position(), limit=self.batch)
        if not records:
            return 0
        publisher.publish_records(records=records, publisher=self.publisher)
        self.flush()
        self.after_seq = records[-1].seq
        log.info("relayed audit records %d..%d", records[0].seq, records[-1].seq)
        return len(records)

    def unacknowledged(self) -> None:
        """Some of the batch may be on the topic: read the position from it again."""
        self.after_seq = None


def run_worker(settings: Settings | None = None) -> None:
    """Run the audit relay in the foreground until SIGTERM or SIGINT."""
    run_relay(AuditRelay(settings=settings or get_settings()), what="audit records -> the audit topic")
