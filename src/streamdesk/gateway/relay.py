"""The intake relay (`streamdesk worker relay`): stored webhook deliveries -> their raw topics, until processed.

Each pass locks the due deliveries (`FOR UPDATE SKIP LOCKED`, so relays can run side by side), publishes
them with their `intake-id`, waits for the broker's acknowledgement, and only then records the publish and
commits; a delivery ingest has not processed by `gateway.redeliver_after_s` is published again (doubling the
wait each time), so one lost with an embedded broker's memory is not lost for good. Between passes the
relay sleeps on PostgreSQL's LISTEN/NOTIFY, which the gateway signals for every stored delivery.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import psycopg

from streamdesk import db
from streamdesk.config import Settings, get_settings
from streamdesk.gateway import intake
from streamdesk.kafka import Publisher, PublishError

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 10.0


class Relay:
    """Publishes due deliveries from `webhook_deliveries` on one connection and one producer."""

    def __init__(self, *, settings: Settings) -> None:
        if not settings.kafka.bootstrap_servers:
            raise SystemExit("no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
        self.settings = settings
        self._conn: psycopg.Connection | None = None
        self._publisher: Publisher | None = None

    @property
    def conn(self) -> psycopg.Connection:
        """An autocommit connection listening on the intake channel."""
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(db.database_url(self.settings), autocommit=True)
            self._conn.execute(f"LISTEN {intake.CHANNEL}")
        return self._conn

    @property
    def publisher(self) -> Publisher:
        """The relay's producer (a fresh one after a failed flush)."""
        if self._publisher is None:
            self._publisher = Publisher(self.settings.kafka.bootstrap_servers or "", client_id="streamdesk-relay")
        return self._publisher

    def relay_once(self) -> int:
        """Publish one batch of due deliveries and record it; return how many went out."""
        gateway = self.settings.gateway
        with self.conn.transaction():
            due = intake.claim_due(conn=self.conn, limit=gateway.relay_batch, max_attempts=gateway.relay_max_attempts)
            if not due:
                return 0
            for delivery in due:
                headers = delivery.headers | {intake.INTAKE_ID: str(delivery.id)}
                self.publisher.publish(delivery.topic, delivery.body, key=delivery.key, headers=headers)
            try:
                self.publisher.flush(FLUSH_TIMEOUT_S)
            except PublishError:
                self._publisher = None
                raise
            intake.mark_published(conn=self.conn, ids=[d.id for d in due], redeliver_after_s=gateway.redeliver_after_s)
        log.info("relayed %d webhook deliveries", len(due))
        return len(due)

    def wait(self, timeout_s: float) -> None:
        """Sleep until a delivery is stored or `timeout_s` passes."""
        for _ in self.conn.notifies(timeout=timeout_s, stop_after=1):
            pass

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; broker and database outages are waited out, not fatal."""
        pause = self.settings.gateway.relay_interval_s
        while not stop.is_set():
            try:
                while self.relay_once() and not stop.is_set():
                    pass
                self.wait(pause)
            except PublishError as exc:
                log.warning("relay: the broker did not acknowledge (%s); retrying in %.1fs", exc, pause)
                stop.wait(pause)
            except psycopg.OperationalError as exc:
                log.warning("relay: the database is unreachable (%s); retrying in %.1fs", exc, pause)
                if self._conn is not None:
                    self._conn.close()
                stop.wait(pause)
        self.close()

    def close(self) -> None:
        """Release the connection and the producer."""
        if self._conn is not None:
            self._conn.close()
        if self._publisher is not None:
            try:
                self._publisher.flush(FLUSH_TIMEOUT_S)
            except PublishError as exc:  # unrecorded publishes are due again: nothing is lost
                log.warning("relay closed with unacknowledged messages: %s", exc)


def run_worker(settings: Settings | None = None) -> None:
    """Run the relay in the foreground until SIGTERM or SIGINT."""
    settings = settings or get_settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    started = time.monotonic()
    log.info("relay started: webhook deliveries -> raw topics on %s", settings.kafka.bootstrap_servers)
    Relay(settings=settings).run(stop)
    log.info("relay stopped after %.0fs", time.monotonic() - started)
