"""Entities and tickets: version-ordered, idempotent writes of business records and support tickets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streamdesk.contracts import (
    EntityEvent,
    FoldStats,
    SourcePosition,
    StoredTicket,
    TicketEvent,
    TicketState,
    events_by_key,
    tombstone_applies,
)
from streamdesk.entities.exceptions import InvalidEntityEventError

EntityKey = tuple[str, str, str]
TicketKey = tuple[str, str]
ENTITY_LOCK_NAMESPACE = 0x5D0E
TICKET_LOCK_NAMESPACE = 0x5D07
TICKET_FIELDS = ("subject", "status", "priority", "assignee_id", "requester", "customer_id", "tenant")
"""Ticket columns a newer event overwrites whenever it carries a value."""


class EntityStats(FoldStats):
    """What one `apply_entities` call did, per event; the four counts add up to the events given."""


@dataclass
class TicketStats:
    """What one `apply_tickets` call did."""

    events_inserted: int = 0
    duplicates: int = 0
    tickets_updated: int = 0


@dataclass
class _EntityState:
    version: list[int]
    deleted: bool
    attributes: dict[str, Any]
    event: EntityEvent | None = None
    position: SourcePosition | None = None


_LOCK_KEYS = "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int4[]) AS k"
_SELECT_ENTITIES = """
    SELECT entity_type, source, external_id, version, deleted, attributes, source_position
    FROM entities
    WHERE (entity_type, source, external_id) IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))
    FOR UPDATE
"""
_UPSERT_ENTITY = """
    INSERT INTO entities (entity_type, source, external_id, version, deleted, event_id, attributes, tenant,
                          occurred_at, source_position, updated_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
    ON CONFLICT (entity_type, source, external_id) DO UPDATE SET
        version = EXCLUDED.version, deleted = EXCLUDED.deleted, event_id = EXCLUDED.event_id,
        attributes = EXCLUDED.attributes, tenant = EXCLUDED.tenant, occurred_at = EXCLUDED.occurred_at,
        source_position = COALESCE(EXCLUDED.source_position, entities.source_position), updated_at = now()
"""
_INSERT_TICKET_EVENTS = """
    INSERT INTO ticket_events (event_id, source, ticket_id, event_type, version, body, occurred_at, payload)
    SELECT e.event_id, e.source, e.ticket_id, e.event_type, e.version::bigint[], e.body, e.occurred_at,
           e.payload::jsonb
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
                %s::text[]) AS e(event_id, source, ticket_id, event_type, version, body, occurred_at, payload)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING source, ticket_id
"""
_SELECT_TICKET_EVENTS = """
    SELECT source, ticket_id, event_type, occurred_at, payload - 'body'
    FROM ticket_events
    WHERE (source, ticket_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
    ORDER BY source, ticket_id, version, occurred_at, event_id
"""
_UPSERT_TICKET = """
    INSERT INTO tickets (source, ticket_id, version, subject, status, priority, assignee_id, requester,
                         customer_id, tags, tenant, metadata, created_at, updated_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
    ON CONFLICT (source, ticket_id) DO UPDATE SET
        version = EXCLUDED.version, subject = EXCLUDED.subject, status = EXCLUDED.status,
        priority = EXCLUDED.priority, assignee_id = EXCLUDED.assignee_id, requester = EXCLUDED.requester,
        customer_id = EXCLUDED.customer_id, tags = EXCLUDED.tags, tenant = EXCLUDED.tenant,
        metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at, updated_at = now()
"""
_SELECT_TICKET_STATES = """
    SELECT source, ticket_id, version, subject, status, priority, assignee_id, requester, customer_id, tags, tenant
    FROM tickets
    WHERE (source, ticket_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""
_ENTITY_COLUMNS = "entity_type, source, external_id, version, attributes, tenant, occurred_at, updated_at"


def apply_entities(conn: psycopg.Connection, events: Sequence[EntityEvent]) -> EntityStats:
    """Apply a batch of entity events in version order (merging partial updates); the caller commits."""
    by_key: dict[EntityKey, list[EntityEvent]] = events_by_key(
        events, key=lambda event: (event.entity_type, event.source, event.external_id), invalid=InvalidEntityEventError
    )
    stats = EntityStats()
    if not by_key:
        return stats
    keys = sorted(by_key)
    with conn.transaction() if conn.autocommit else nullcontext():
        with conn.pipeline():
            conn.execute(_LOCK_KEYS, (ENTITY_LOCK_NAMESPACE, _lock_ids(keys)))
            cur = conn.execute(_SELECT_ENTITIES, [list(column) for column in zip(*keys, strict=True)])
        stored = {
            (row[0], row[1], row[2]): _EntityState(
                list(row[3]), row[4], row[5], position=None if row[6] is None else SourcePosition(**row[6])
            )
            for row in cur.fetchall()
        }
        rows = []
        for key in keys:
            state = _fold_entity(by_key[key], stored.get(key), stats)
            if state is not None and state.event is not None:
                event = state.event
                rows.append(
                    (
                        *key,
                        state.version,
                        state.deleted,
                        event.event_id,
                        Jsonb(state.attributes),
                        event.tenant,
                        event.occurred_at,
                        None if state.position is None else Jsonb(state.position.to_json()),
                    )
                )
        if rows:
            with conn.pipeline(), conn.cursor() as write:
                write.executemany(_UPSERT_ENTITY, rows)
    return stats


def _fold_entity(events: list[EntityEvent], stored: _EntityState | None, stats: EntityStats) -> _EntityState | None:
    """Fold `events` (batch order) over `stored`; count each event in `stats`; None when nothing applied.

    An upsert applies above the current version, a delete at or above it, a tombstone at it (only if it
    comes after the raw message that last wrote a live row: see `tombstone_applies`); at equal versions
    within the batch the later event wins.
    """
    state = stored
    applied = False
    for event in events:
        position = event.position or (state.position if state is not None else None)
        tie = state is not None and event.version == state.version
        if event.op == "upsert":
            if state is None or event.version > state.version or (tie and applied):
                base = {} if state is None or state.deleted else state.attributes
                attributes = _merge(base, event)
                if state is not None and not state.deleted and attributes == state.attributes:
                    stats.unchanged += 1
                else:
                    stats.upserted += 1
                state, applied = _EntityState(event.version, False, attributes, event, position), True
            else:
                stats.stale += 1
        elif event.op == "delete":
            if state is None or event.version > state.version or (tie and (applied or not state.deleted)):
                stats.deleted += 1
                state, applied = _EntityState(event.version, True, {}, event, position), True
            elif tie:
                stats.unchanged += 1
            else:
                stats.stale += 1
        elif state is None or (
            not state.deleted and tombstone_applies(stored=state.position, tombstone=event.position)
        ):
            stats.deleted += 1
            state, applied = _EntityState(state.version if state else [0], True, {}, event, position), True
        else:
            stats.unchanged += 1
    return state if applied else None


def _merge(base: dict[str, Any], event: EntityEvent) -> dict[str, Any]:
    """The attributes after `event`: merged (partial) or replaced, unchanged fields kept, nulled fields null."""
    keep = set(event.unchanged_fields)
    incoming = {name: value for name, value in event.attributes.items() if name not in keep}
    attributes = {**base, **incoming} if event.partial else incoming
    for name in keep:
        if name in base:
            attributes[name] = base[name]
        else:
            attributes.pop(name, None)
    for name in event.nulled_fields:
        attributes[name] = None
    return attributes


def apply_tickets(conn: psycopg.Connection, events: Sequence[TicketEvent]) -> TicketStats:
    """Record ticket events once each (by event_id) and fold them into `tickets`; the caller commits."""
    stats = TicketStats()
    if not events:
        return stats
    keys = sorted({(event.source, event.ticket_id) for event in events})
    columns: list[list[Any]] = [[] for _ in range(8)]
    for event in events:
        row = (
            event.event_id,
            event.source,
            event.ticket_id,
            event.event_type,
            _array_literal(event.version),
            event.body,
            event.occurred_at,
            json.dumps(event.to_json(), separators=(",", ":")),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    with conn.transaction() if conn.autocommit else nullcontext():
        with conn.pipeline():
            conn.execute(_LOCK_KEYS, (TICKET_LOCK_NAMESPACE, _lock_ids(keys)))
            inserted = conn.execute(_INSERT_TICKET_EVENTS, columns)
            history = conn.execute(_SELECT_TICKET_EVENTS, [list(column) for column in zip(*keys, strict=True)])
        changed = {(source, ticket_id) for source, ticket_id in inserted.fetchall()}
        stats.events_inserted = inserted.rowcount
        stats.duplicates = len(events) - stats.events_inserted
        by_ticket: dict[TicketKey, list[tuple[str, datetime, dict[str, Any]]]] = {}
        for source, ticket_id, event_type, occurred_at, payload in history.fetchall():
            if (source, ticket_id) in changed:
                by_ticket.setdefault((source, ticket_id), []).append((event_type, occurred_at, payload))
        rows = [_fold_ticket(key, history_rows) for key, history_rows in sorted(by_ticket.items())]
        if rows:
            with conn.pipeline(), conn.cursor() as write:
                write.executemany(_UPSERT_TICKET, rows)
    stats.tickets_updated = len(rows)
    return stats


def stored_tickets(conn: psycopg.Connection, *, events: Sequence[TicketEvent]) -> list[StoredTicket]:
    """`events` with their tickets as `tickets` holds them now (in the caller's transaction); unstored ones left out."""
    keys = sorted({(event.source, event.ticket_id) for event in events})
    if not keys:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SELECT_TICKET_STATES, [list(column) for column in zip(*keys, strict=True)]).fetchall()
    states = {(row.pop("source"), row.pop("ticket_id")): TicketState.model_validate(row) for row in rows}
    return [
        StoredTicket(event=event, ticket=states[(event.source, event.ticket_id)])
        for event in events
        if (event.source, event.ticket_id) in states
    ]


def _fold_ticket(key: TicketKey, history: list[tuple[str, datetime, dict[str, Any]]]) -> tuple[Any, ...]:
    """The `tickets` row for one ticket's events in version order: the newest value of each field wins."""
    fields: dict[str, Any] = dict.fromkeys(TICKET_FIELDS)
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    version: list[int] = []
    created = [occurred_at for event_type, occurred_at, _ in history if event_type == "created"]
    for _, _, payload in history:
        version = payload["version"]
        for name in TICKET_FIELDS:
            if payload.get(name) is not None:
                fields[name] = payload[name]
        if payload.get("tags"):
            tags = payload["tags"]
        metadata.update(payload.get("metadata") or {})
    requester = fields["requester"]
    return (
        *key,
        version,
        fields["subject"],
        fields["status"],
        fields["priority"],
        fields["assignee_id"],
        Jsonb(requester) if requester is not None else None,
        fields["customer_id"],
        tags,
        fields["tenant"] or "default",
        Jsonb(metadata),
        min(created) if created else min(occurred_at for _, occurred_at, _ in history),
    )


def get_entity(
    conn: psycopg.Connection, *, entity_type: str, external_id: str, source: str | None = None
) -> dict[str, Any] | None:
    """A live entity by type and id (any source unless given; the most recently updated wins)."""
    sql = f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE entity_type = %s AND external_id = %s AND NOT deleted"
    params: list[Any] = [entity_type, external_id]
    if source is not None:
        sql += " AND source = %s"
        params.append(source)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql + " ORDER BY updated_at DESC LIMIT 1", params).fetchone()


def find_customers_by_email(conn: psycopg.Connection, *, email: str) -> list[dict[str, Any]]:
    """Live customers whose email matches, ignoring case and surrounding spaces."""
    sql = (
        f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE entity_type = 'customer' "
        "AND lower(attributes->>'email') = lower(%s) AND NOT deleted ORDER BY source, external_id"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, (email.strip(),)).fetchall()


def _lock_ids(keys: Sequence[tuple[str, ...]]) -> list[int]:
    """Sorted 32-bit advisory lock ids of `keys` (sorted, so concurrent writers never deadlock)."""
    ids = set()
    for key in keys:
        digest = hashlib.blake2b("\x00".join(key).encode(), digest_size=4).digest()
        ids.add(int.from_bytes(digest, "big", signed=True))
    return sorted(ids)


def _array_literal(values: Sequence[int]) -> str:
    return "{" + ",".join(str(int(v)) for v in values) + "}"


_TICKET_COLUMNS = (
    "source, ticket_id, subject, status, priority, assignee_id, requester, customer_id, tags, tenant, "
    "created_at, updated_at"
)


def list_tickets(
    conn: psycopg.Connection, *, tenant: str, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Tickets of `tenant` (with `status`), most recently updated first."""
    sql = f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE tenant = %s"
    params: list[Any] = [tenant]
    if status is not None:
        sql += " AND status = %s"
        params.append(status)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql + " ORDER BY updated_at DESC, source, ticket_id LIMIT %s OFFSET %s", [*params, limit, offset]
        ).fetchall()


def get_ticket(conn: psycopg.Connection, *, source: str, ticket_id: str, tenant: str) -> dict[str, Any] | None:
    """One ticket of `tenant`, with the body of its first message."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_TICKET_COLUMNS}, (SELECT body FROM ticket_events e WHERE e.source = t.source "
            "AND e.ticket_id = t.ticket_id AND body IS NOT NULL ORDER BY version, occurred_at LIMIT 1) AS body "
            "FROM tickets t WHERE source = %s AND ticket_id = %s AND tenant = %s",
            (source, ticket_id, tenant),
        ).fetchone()
