"""Deliver each reply once: recorded in `deliveries` before it goes out, posted, and recorded as delivered.

A reply is first written as `queued` (by the worker when it reads it from the `answer` or `reply` topic, or
by the verdict that accepts a draft, in the verdict's transaction). `deliver` then holds a PostgreSQL
advisory lock on the reply id (so two workers never post one reply at once), commits `sending` and the
attempt count, posts through the ticket's sink, and records `delivered`. A reply tried before (a worker killed
mid-post, a timed-out request) is looked for among the ticket's comments before it is posted again. An
unreachable or busy helpdesk is retried with exponential backoff (tenacity; longer when `Retry-After` asks) for
`retry_for_s`, then the reply waits as `retrying` for the next sweep; a refusal (4xx other than 429) is
dead-lettered with its reason.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from streamdesk import db
from streamdesk.contracts import DeadLetter
from streamdesk.delivery.config import DeliverySettings
from streamdesk.delivery.exceptions import DeliveryRefusedError, DeliveryUnavailableError, NoDestinationError
from streamdesk.delivery.models import REPLY_TOPIC, Delivery, Reply
from streamdesk.delivery.sinks import Sink, sink_for
from streamdesk.kafka import Publisher
from streamdesk.streams import deadletter
from streamdesk.streams.messages import RawMessage

log = logging.getLogger(__name__)
FINAL = ("delivered", "dead_lettered")
_COLUMNS = (
    "reply_id, answer_id, kind, source, ticket_id, tenant, destination, status, attempts, reason, remote_ref, "
    "dead_letter_id, created_at, updated_at, delivered_at"
)


def enqueue(conn: psycopg.Connection, *, replies: Sequence[Reply]) -> int:
    """Record replies as queued; one already recorded (a redelivery) is left as it is. Return how many were new."""
    new = 0
    for reply in replies:
        cur = conn.execute(
            "INSERT INTO deliveries (reply_id, answer_id, kind, source, ticket_id, tenant, reply) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (reply_id) DO NOTHING",
            (
                reply.reply_id,
                reply.answer_id,
                reply.kind,
                reply.source,
                reply.ticket_id,
                reply.tenant,
                Jsonb(reply.to_json()),
            ),
        )
        new += max(cur.rowcount, 0)
    return new


def get_delivery(conn: psycopg.Connection, *, reply_id: str) -> Delivery | None:
    """The delivery of reply `reply_id`, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE reply_id = %s", (reply_id,)).fetchone()
    return None if row is None else Delivery.from_row(row)


def list_deliveries(
    conn: psycopg.Connection,
    *,
    tenant: str,
    answer_id: str | None = None,
    source: str | None = None,
    ticket_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """The tenant's deliveries, newest first, narrowed to an answer, a ticket or a status when given."""
    clauses, params = ["tenant = %s"], [tenant]
    for column, value in (("answer_id", answer_id), ("source", source), ("ticket_id", ticket_id), ("status", status)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at DESC, reply_id LIMIT %s",
            (*params, limit),
        ).fetchall()
    return [Delivery.from_row(row) for row in rows]


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    """How many deliveries are in each state, and how many auto replies are stored without a final one yet."""
    counts = {status: int(n) for status, n in conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")}
    row = conn.execute(
        "SELECT count(*) FROM answers a WHERE a.status = 'auto_reply' AND NOT EXISTS "
        "(SELECT 1 FROM deliveries d WHERE d.reply_id = a.answer_id::text AND d.status = ANY(%s))",
        (list(FINAL),),
    ).fetchone()
    return counts | {"auto_replies_waiting": int(row[0]) if row else 0}


def due_reply_ids(conn: psycopg.Connection, *, queued_for_s: float, limit: int = 100) -> list[str]:
    """Replies to deliver now: retrying ones whose time has come, and queued or sending ones left over."""
    rows = conn.execute(
        "SELECT reply_id FROM deliveries WHERE next_attempt_at <= now() AND ("
        " status = 'retrying' OR (status IN ('queued', 'sending') AND updated_at <= now() - make_interval(secs => %s))"
        ") ORDER BY next_attempt_at, created_at LIMIT %s",
        (queued_for_s, limit),
    ).fetchall()
    return [str(row[0]) for row in rows]


def refusal_letter(reply: Reply, exc: Exception) -> DeadLetter:
    """The dead letter of a reply the helpdesk refused: `partition` -1, `offset` from the reply id (one per reply)."""
    value = reply.model_dump_json().encode()
    offset = int.from_bytes(hashlib.sha256(reply.reply_id.encode()).digest()[:8], "big") >> 1
    message = RawMessage(topic=REPLY_TOPIC, value=value, key=reply.topic_key.encode(), partition=-1, offset=offset)
    return deadletter.dead_letter_for(message, exc, stage="delivery")


_BACKOFF = wait_exponential(multiplier=0.2, max=5.0)


def backoff(state: RetryCallState) -> float:
    """Exponential backoff (0.2 s doubling up to 5 s), or longer when the helpdesk's `Retry-After` asks for it."""
    error = state.outcome.exception() if state.outcome is not None else None
    asked = error.retry_after_s if isinstance(error, DeliveryUnavailableError) else None
    return max(_BACKOFF(state), asked or 0.0)


@dataclass
class Deliverer:
    """Delivers recorded replies through the configured sinks, one reply at a time per reply id."""

    database_url: str
    settings: DeliverySettings
    publisher: Publisher | None = None
    sinks: dict[str, Sink] = field(default_factory=dict)

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(DeliveryUnavailableError),
            wait=backoff,
            stop=stop_after_delay(self.settings.retry_for_s),
            reraise=True,
        )

    def deliver_due(self) -> int:
        """Deliver every reply due (retries, replies queued but never read from a topic, crashed sends)."""
        with db.connect(self.database_url, autocommit=True) as conn:
            due = due_reply_ids(conn, queued_for_s=self.settings.sweep_after_s)
        return sum(self.deliver(reply_id) for reply_id in due)

    def deliver(self, reply_id: str) -> bool:
        """Deliver reply `reply_id` unless it is delivered, dead-lettered or in another worker's hands; True if sent."""
        with db.connect(self.database_url, autocommit=True) as conn:
            key = ("delivery", reply_id)
            if not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", key).fetchone()[0]:  # type: ignore[index]
                return False
            try:
                return self._deliver_locked(conn, reply_id=reply_id)
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", key)

    def _deliver_locked(self, conn: psycopg.Connection, *, reply_id: str) -> bool:
        row = conn.execute("SELECT status, attempts, reply FROM deliveries WHERE reply_id = %s", (reply_id,)).fetchone()
        if row is None or row[0] in FINAL:
            return False
        attempts, reply = int(row[1]), Reply.model_validate(row[2])
        try:
            sink = sink_for(reply.source, settings=self.settings, sinks=self.sinks)
            status = reply.ticket_status or (
                self.settings.follow_up_status if reply.kind == "follow_up" else self.settings.reply_status
            )
            reference = self._post(conn, reply=reply, sink=sink, status=status, tried=attempts > 0)
        except DeliveryRefusedError as exc:
            self._dead_letter(conn, reply=reply, exc=exc)
            return False
        except (DeliveryUnavailableError, NoDestinationError) as exc:
            log.warning("reply %s not delivered yet: %s", reply_id, exc)
            conn.execute(
                "UPDATE deliveries SET status = 'retrying', reason = %s, updated_at = now(), "
                "next_attempt_at = now() + make_interval(secs => %s) WHERE reply_id = %s",
                (str(exc)[:2000], self.settings.retry_later_s, reply_id),
            )
            return False
        conn.execute(
            "UPDATE deliveries SET status = 'delivered', remote_ref = %s, reason = NULL, destination = %s, "
            "delivered_at = now(), updated_at = now() WHERE reply_id = %s",
            (reference, sink.name, reply_id),
        )
        log.info("reply %s delivered to %s ticket %s (%s)", reply_id, sink.name, reply.ticket_id, reference)
        return True

    def _post(self, conn: psycopg.Connection, *, reply: Reply, sink: Sink, status: str, tried: bool) -> str:
        """Post `reply` under the retry policy; a reply tried before is looked for first, never posted twice."""
        for attempt in self._retrying():
            with attempt:
                if tried:
                    found = sink.find(reply)
                    if found is not None:
                        return found
                conn.execute(
                    "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, destination = %s, "
                    "updated_at = now() WHERE reply_id = %s",
                    (sink.name, reply.reply_id),
                )
                tried = True
                return sink.send(reply, status=status)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _dead_letter(self, conn: psycopg.Connection, *, reply: Reply, exc: Exception) -> None:
        letter = refusal_letter(reply, exc)
        with conn.transaction():
            (row_id,) = deadletter.store_dead_letters(conn, letters=[letter])
            conn.execute(
                "UPDATE deliveries SET status = 'dead_lettered', reason = %s, dead_letter_id = %s, updated_at = now() "
                "WHERE reply_id = %s",
                (letter.reason, row_id, reply.reply_id),
            )
        log.warning("reply %s refused by the helpdesk, dead-lettered: %s", reply.reply_id, letter.reason)
        if self.publisher is not None:
            deadletter.announce(self.publisher, [letter], [row_id])
            self.publisher.flush()
