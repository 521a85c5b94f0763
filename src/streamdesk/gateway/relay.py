"""The intake relay (`streamdesk worker relay`): stored webhook deliveries -> their raw topics, until processed.

Each pass locks the due deliveries (`FOR UPDATE SKIP LOCKED`, so relays can run side by side), publishes
them with their `intake-id`, waits for the broker's acknowledgement, and only then records the publish and
commits; a delivery ingest has not processed by `gateway.redeliver_after_s` is published again (doubling the
wait each time), so one lost with an embedded broker's memory is not lost for good. Between passes the
relay sleeps on PostgreSQL's LISTEN/NOTIFY, which the gateway signals for every stored delivery, and now
and then forgets processed deliveries too old for any replay of them to pass the signature's freshness check.
"""

from __future__ import annotations

import base64
import logging
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaException

from streamdesk.config import Settings, get_settings
from streamdesk.contracts import DeadLetter
from streamdesk.gateway import intake
from streamdesk.gateway.exceptions import UnprocessedDeliveryError
from streamdesk.kafka import PublishError
from streamdesk.streams import deadletter
from streamdesk.streams.deadletter import store_dead_letters
from streamdesk.streams.errors import describe
from streamdesk.streams.relay import OutboxRelay, run_relay

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 300.0


def refused_letter(delivery: intake.PendingDelivery, *, headers: dict[str, str], exc: Exception) -> DeadLetter:
    """The dead letter of a delivery the relay cannot hand on (refused, or never processed): partition -1, offset its
    intake id."""
    return DeadLetter(
        topic=delivery.topic,
        partition=-1,
        offset=delivery.id,
        key_b64=base64.b64encode(delivery.key.encode()).decode(),
        value_b64=base64.b64encode(delivery.body).decode(),
        headers=dict(headers),
        reason=f"{describe(exc)} (a {len(delivery.body)}-byte delivery; the original is kept in dead_letters)",
        error_type=type(exc).__name__,
        stage="raw",
    )


class Relay(OutboxRelay):
    """Publishes due deliveries from `webhook_deliveries` (the outbox-relay loop, `streams/relay.py`)."""

    name = "relay"
    channel = intake.CHANNEL

    def __init__(self, *, settings: Settings) -> None:
        super().__init__(settings=settings, interval_s=settings.gateway.relay_interval_s)
        self._next_prune = 0.0

    def relay_once(self) -> int:
        """Publish one batch of due deliveries and record it; return how many were handled."""
        gateway = self.settings.gateway
        with self.conn.transaction():
            due = intake.claim_due(conn=self.conn, limit=gateway.relay_batch, max_attempts=gateway.relay_max_attempts)
            if not due:
                return 0
            published: list[int] = []
            refused: list[DeadLetter] = []
            for delivery in due:
                headers = delivery.headers | {intake.INTAKE_ID: str(delivery.id)}
                try:
                    self.publisher.publish(delivery.topic, delivery.body, key=delivery.key, headers=headers)
                    published.append(delivery.id)
                except (KafkaException, PublishError) as exc:  # refused outright (larger than the topic takes)
                    refused.append(refused_letter(delivery, headers=headers, exc=exc))
            self.flush()
            given_up = intake.mark_published(
                conn=self.conn,
                ids=published,
                redeliver_after_s=gateway.redeliver_after_s,
                max_attempts=gateway.relay_max_attempts,
            )
            self.dead_letter(refused)
        for delivery_id in given_up:
            log.error(
                "webhook delivery %d published %d times and never processed; unless ingest stores it before its "
                "last wait ends, it becomes a dead letter (see the ingest log; STREAMDESK_GATEWAY__RELAY_MAX_ATTEMPTS)",
                delivery_id,
                gateway.relay_max_attempts,
            )
        log.info("relayed %d webhook deliveries, dead-lettered %d", len(published), len(refused))
        return len(due)

    def dead_letter_exhausted(self) -> int:
        """Dead-letter deliveries published `relay_max_attempts` times and still not processed; return how many."""
        gateway = self.settings.gateway
        with self.conn.transaction():
            stuck = intake.claim_exhausted(
                conn=self.conn, limit=gateway.relay_batch, max_attempts=gateway.relay_max_attempts
            )
            reason = UnprocessedDeliveryError(
                f"published {gateway.relay_max_attempts} times and never stored or dead-lettered by ingest; "
                "see the ingest worker's log, then replay it from dead_letters"
            )
            self.dead_letter(
                [
                    refused_letter(
                        delivery, headers=delivery.headers | {intake.INTAKE_ID: str(delivery.id)}, exc=reason
                    )
                    for delivery in stuck
                ]
            )
        return len(stuck)

    def dead_letter(self, letters: list[DeadLetter]) -> None:
        """In the relay's transaction: store refused deliveries as dead letters (so processed), and announce them.

        The topic copy is the whole record when it fits the `deadletter` topic, else a reference to its row.
        """
        if not letters:
            return
        ids = store_dead_letters(self.conn, letters=letters)
        intake.record_dead_letters(conn=self.conn, letters=letters)
        deadletter.announce(self.publisher, letters, ids)
        for letter in letters:
            log.warning("dead-lettered webhook delivery %d: %s", letter.offset, letter.reason)
        self.flush()

    def tidy(self) -> None:
        """Dead-letter deliveries never processed and, every `PRUNE_EVERY_S`, forget old processed ones."""
        self.dead_letter_exhausted()
        if time.monotonic() >= self._next_prune:
            self.forget_old()
            self._next_prune = time.monotonic() + PRUNE_EVERY_S

    def forget_old(self) -> int:
        """Delete processed deliveries no replay could match any more (signed over 2 tolerances ago); return how many.

        A signed request is fresh within `gateway.tolerance_s` of its timestamp, so once twice that has passed
        since it was received, its replay key can no longer be presented.
        """
        keep_s = 2 * self.settings.gateway.tolerance_s + 60
        before = datetime.now(UTC) - timedelta(seconds=keep_s)
        with self.conn.transaction():
            forgotten = intake.forget_deliveries(conn=self.conn, before=before)
        if forgotten:
            log.info("forgot %d processed webhook deliveries received before %s", forgotten, before.isoformat())
        return forgotten


def run_worker(settings: Settings | None = None) -> None:
    """Run the relay in the foreground until SIGTERM or SIGINT."""
    run_relay(Relay(settings=settings or get_settings()), what="webhook deliveries -> raw topics")
