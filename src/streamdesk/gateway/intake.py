"""The durable webhook intake: deliveries kept in PostgreSQL from their 202 until ingest has made them durable.

The gateway stores an accepted delivery (body, headers, topic, key) in `webhook_deliveries`; the relay
publishes it with an `intake-id` header; canonicalization passes that id on to each canonical event it
yields as `intake-id`, `intake-part`, `intake-parts`; the store transaction that writes a part records it,
and the delivery is processed (its body dropped) once every part is stored or dead-lettered, or once the
raw message itself is dead-lettered or yields nothing. Until then the relay re-publishes it, so a delivery
survives the loss of every broker-held copy (an embedded broker keeps topics in memory only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from streamdesk.contracts import DeadLetter
from streamdesk.gateway.exceptions import ReplayedDeliveryError

INTAKE_ID = "intake-id"
INTAKE_PART = "intake-part"
INTAKE_PARTS = "intake-parts"
CHANNEL = "webhook_intake"
"""The LISTEN/NOTIFY channel that wakes the relay when a delivery is stored."""

_STORE = """
    INSERT INTO webhook_deliveries (source, delivery_id, received_at, topic, key, headers, body)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT DO NOTHING
    RETURNING id
"""
_DUE = """
    SELECT id, topic, key, headers, body FROM webhook_deliveries
    WHERE processed_at IS NULL AND body IS NOT NULL AND (next_publish_at IS NULL OR next_publish_at <= now())
      AND publish_attempts < %s
    ORDER BY next_publish_at NULLS FIRST, id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
_EXHAUSTED = """
    SELECT id, topic, key, headers, body, publish_attempts FROM webhook_deliveries
    WHERE processed_at IS NULL AND body IS NOT NULL AND next_publish_at <= now() AND publish_attempts >= %s
    ORDER BY id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
_PUBLISHED = """
    UPDATE webhook_deliveries
    SET published_at = now(), publish_attempts = publish_attempts + 1,
        next_publish_at = now() + make_interval(secs => %s * 2 ^ least(publish_attempts, 10))
    WHERE id = ANY(%s)
    RETURNING id, publish_attempts
"""
_ADD_PARTS = """
    UPDATE webhook_deliveries
    SET parts_done = ARRAY(SELECT DISTINCT p FROM unnest(parts_done || %s::int[]) AS p ORDER BY p)
    WHERE id = %s AND processed_at IS NULL
"""
_COMPLETE = """
    UPDATE webhook_deliveries AS d SET processed_at = now(), body = NULL
    FROM unnest(%s::bigint[], %s::int[]) AS t(id, parts)
    WHERE d.id = t.id AND d.processed_at IS NULL AND cardinality(d.parts_done) >= t.parts
"""


@dataclass(frozen=True)
class PendingDelivery:
    """A stored delivery the relay is to (re-)publish."""

    id: int
    topic: str
    key: str
    headers: dict[str, str]
    body: bytes


def store_delivery(
    *,
    conn: psycopg.Connection,
    source: str,
    delivery_id: str,
    received_at: datetime,
    topic: str | None = None,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> int:
    """Record a delivery (with its payload, for the relay) and wake the relay; ReplayedDeliveryError if seen before."""
    row = conn.execute(
        _STORE,
        (source, delivery_id, received_at, topic, key, Jsonb(dict(headers or {})), body),
    ).fetchone()
    if row is None:
        raise ReplayedDeliveryError(
            f"{source} delivery {delivery_id[:80]!r} was accepted before; a replayed signed request is not "
            "published twice (a new delivery needs a new signature)"
        )
    if body is not None:
        conn.execute(f"NOTIFY {CHANNEL}")
    return int(row[0])


def forget_deliveries(*, conn: psycopg.Connection, before: datetime) -> int:
    """Delete processed (or payload-less) delivery records received before `before`; return how many went."""
    return conn.execute(
        "DELETE FROM webhook_deliveries WHERE received_at < %s AND (processed_at IS NOT NULL OR body IS NULL)",
        (before,),
    ).rowcount


def claim_exhausted(*, conn: psycopg.Connection, limit: int, max_attempts: int) -> list[PendingDelivery]:
    """Lock up to `limit` deliveries published `max_attempts` times whose last wait has passed, still unprocessed."""
    rows = conn.execute(_EXHAUSTED, (max_attempts, limit)).fetchall()
    return [
        PendingDelivery(id=row[0], topic=row[1], key=row[2] or "", headers=dict(row[3] or {}), body=bytes(row[4]))
        for row in rows
    ]


def claim_due(*, conn: psycopg.Connection, limit: int, max_attempts: int) -> list[PendingDelivery]:
    """Lock up to `limit` deliveries due for (re-)publishing; the caller publishes, marks them, and commits."""
    rows = conn.execute(_DUE, (max_attempts, limit)).fetchall()
    return [
        PendingDelivery(id=row[0], topic=row[1], key=row[2] or "", headers=dict(row[3] or {}), body=bytes(row[4]))
        for row in rows
    ]


def mark_published(
    *, conn: psycopg.Connection, ids: Sequence[int], redeliver_after_s: float, max_attempts: int
) -> list[int]:
    """Record a publish (the next is due `redeliver_after_s`, doubled per earlier attempt, from now).

    Returns the deliveries that have now had `max_attempts` publishes: the relay will not try them again.
    """
    if not ids:
        return []
    rows = conn.execute(_PUBLISHED, (redeliver_after_s, list(ids))).fetchall()
    return sorted(delivery for delivery, attempts in rows if attempts >= max_attempts)


def requeue(*, conn: psycopg.Connection) -> int:
    """Make every unprocessed delivery due now with a fresh attempt count (a new, empty broker); return how many."""
    return conn.execute(
        "UPDATE webhook_deliveries SET next_publish_at = NULL, publish_attempts = 0 "
        "WHERE processed_at IS NULL AND body IS NOT NULL"
    ).rowcount


def unprocessed(*, conn: psycopg.Connection, unpublished_only: bool = False) -> int:
    """How many stored deliveries are not processed yet (or, with `unpublished_only`, never published)."""
    where = "processed_at IS NULL AND body IS NOT NULL" + (" AND published_at IS NULL" if unpublished_only else "")
    row = conn.execute(f"SELECT count(*) FROM webhook_deliveries WHERE {where}").fetchone()
    return int(row[0]) if row else 0


def intake_id(headers: Mapping[str, Any]) -> int | None:
    """The intake id a message carries, if it came through the durable intake."""
    value = headers.get(INTAKE_ID)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def part_headers(headers: Mapping[str, Any], *, part: int, parts: int) -> dict[str, str]:
    """The intake headers for canonical event `part` of `parts` made from a raw message with `headers`."""
    found = intake_id(headers)
    if found is None:
        return {}
    return {INTAKE_ID: str(found), INTAKE_PART: str(part), INTAKE_PARTS: str(parts)}


def _part(headers: Mapping[str, Any]) -> tuple[int, int, int] | None:
    found = intake_id(headers)
    part, parts = headers.get(INTAKE_PART), headers.get(INTAKE_PARTS)
    if found is None or not isinstance(part, str) or not isinstance(parts, str):
        return None
    if not (part.isdigit() and parts.isdigit()):
        return None
    return found, int(part), int(parts)


def record_done(*, conn: psycopg.Connection, headers: Iterable[Mapping[str, Any]]) -> None:
    """In the caller's transaction: the messages with these headers are durable; complete their deliveries.

    A canonical part counts once however often it is redelivered; a raw message (no part) completes its
    delivery at once (it was dead-lettered or yielded nothing).
    """
    parts: dict[int, tuple[int, set[int]]] = {}
    whole: set[int] = set()
    for carried in headers:
        found = _part(carried)
        if found is not None:
            parts.setdefault(found[0], (found[2], set()))[1].add(found[1])
        elif (raw := intake_id(carried)) is not None:
            whole.add(raw)
    ids = sorted(parts.keys() | whole)
    if not ids:
        return
    with conn.cursor() as cur:
        cur.executemany(_ADD_PARTS, [(sorted(parts[i][1]), i) for i in sorted(parts)])
        totals = [0 if i in whole else parts[i][0] for i in ids]
        cur.execute(_COMPLETE, (ids, totals))


def record_dead_letters(*, conn: psycopg.Connection, letters: Sequence[DeadLetter]) -> None:
    """In the caller's transaction: dead-lettered messages are durable too; complete their deliveries."""
    record_done(conn=conn, headers=[{k: v for k, v in letter.headers.items() if v is not None} for letter in letters])
