"""The outbox-relay base: rows committed to PostgreSQL -> broker topics, by a worker of their own.

A relay subclass says how one batch is claimed, published and recorded (`relay_once`) and what else it
does between batches (`tidy`); this base keeps the loop the relays share: one autocommit connection that
LISTENs on the subclass's channel (the writer NOTIFYs it in the transaction that stores a row, so the relay
wakes at commit), one producer replaced after a failed flush, broker and database outages waited out, and a
stop on SIGTERM or SIGINT after the batch in hand.
"""

from __future__ import annotations

import abc
import logging
import signal
import threading
import time

import psycopg

from streamdesk import db
from streamdesk.config import Settings
from streamdesk.kafka import Publisher, PublishError

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 10.0


class OutboxRelay(abc.ABC):
    """Publishes what a table holds for the broker, batch by batch, on one connection and one producer."""

    name = "relay"
    """What the relay is called in its log lines."""
    channel = ""
    """The LISTEN/NOTIFY channel its writers signal; empty: poll every `interval_s`."""

    def __init__(self, *, settings: Settings, interval_s: float) -> None:
        if not settings.kafka.bootstrap_servers:
            raise SystemExit("no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
        self.settings = settings
        self.interval_s = interval_s
        self._conn: psycopg.Connection | None = None
        self._publisher: Publisher | None = None

    @property
    def conn(self) -> psycopg.Connection:
        """An autocommit connection listening on the relay's channel."""
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(db.database_url(self.settings), autocommit=True)
            if self.channel:
                self._conn.execute(f"LISTEN {self.channel}")
            self.connected()
        return self._conn

    @property
    def publisher(self) -> Publisher:
        """The relay's producer (a fresh one after a failed flush)."""
        if self._publisher is None:
            self._publisher = Publisher(
                self.settings.kafka.bootstrap_servers or "", client_id=f"streamdesk-{self.name}"
            )
        return self._publisher

    def connected(self) -> None:  # noqa: B027 - an optional hook
        """Called on each new database connection (a subclass re-reads its position here)."""

    @abc.abstractmethod
    def relay_once(self) -> int:
        """Publish one batch and record it; return how many rows were handled (0: nothing is due)."""

    def tidy(self) -> None:  # noqa: B027 - an optional hook
        """Between batches: what else the relay keeps in order (dead letters, old rows)."""

    def flush(self) -> None:
        """Wait for the broker to acknowledge everything queued; PublishError (and a fresh producer next) if not."""
        try:
            self.publisher.flush(FLUSH_TIMEOUT_S)
        except PublishError:
            self._discard_publisher()
            self.unacknowledged()
            raise

    def unacknowledged(self) -> None:  # noqa: B027 - an optional hook
        """Called when a flush failed: what was queued may or may not be on the broker."""

    def wait(self, timeout_s: float) -> None:
        """Sleep until a writer signals the channel or `timeout_s` passes."""
        if not self.channel:
            time.sleep(timeout_s)
            return
        for _ in self.conn.notifies(timeout=timeout_s, stop_after=1):
            pass

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; broker and database outages are waited out, not fatal."""
        pause = self.interval_s
        while not stop.is_set():
            try:
                while self.relay_once() and not stop.is_set():
                    pass
                self.tidy()
                self.wait(pause)
            except PublishError as exc:
                log.warning("%s: the broker did not acknowledge (%s); retrying in %.1fs", self.name, exc, pause)
                stop.wait(pause)
            except psycopg.OperationalError as exc:
                log.warning("%s: the database is unreachable (%s); retrying in %.1fs", self.name, exc, pause)
                if self._conn is not None:
                    self._conn.close()
                stop.wait(pause)
        self.close()

    def _discard_publisher(self) -> None:
        """Shut the producer down without waiting (its queue is dropped), so it stops reconnecting to the broker."""
        found, self._publisher = self._publisher, None
        if found is not None:
            found.release(0)

    def close(self) -> None:
        """Release the connection and the producer (after waiting up to `FLUSH_TIMEOUT_S` for its queue)."""
        if self._conn is not None:
            self._conn.close()
        found, self._publisher = self._publisher, None
        if found is not None:
            found.release(FLUSH_TIMEOUT_S)  # what is unrecorded is relayed again: nothing is lost


def run_relay(relay: OutboxRelay, *, what: str) -> None:
    """Run `relay` in the foreground until SIGTERM or SIGINT; `what` says what it moves, for the log."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    started = time.monotonic()
    log.info("%s started: %s on %s", relay.name, what, relay.settings.kafka.bootstrap_servers)
    relay.run(stop)
    log.info("%s stopped after %.0fs", relay.name, time.monotonic() - started)
