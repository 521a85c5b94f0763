"""The command outbox: a write becomes a command in the transaction of its audit record, then is tracked to its end.

`capture()` collects the row changes a tool's handler asks for instead of applying them to the local copy;
`enqueue` writes the command to `command_outbox` (and NOTIFYs the relay at commit). The command's changes
come back through the normal CDC ingest carrying the idempotency key in the `command_key` column:
`confirm_changes` (called by the entity hop in the store transaction) confirms a command once every row it
changed has come back; `fail` records a system's rejection; `escalate_overdue` gives up waiting.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streamdesk import topics
from streamdesk.commands.exceptions import UnknownSystemError
from streamdesk.commands.models import KEY_COLUMN, Command, CommandStatus, RowChange, TrackedCommand

CHANNEL = "command_outbox"
"""The LISTEN/NOTIFY channel `enqueue` signals at commit."""
_CAPTURED: contextvars.ContextVar[list[RowChange] | None] = contextvars.ContextVar("captured_changes", default=None)
_COLUMNS = "payload, status, reason, awaiting, published_at, resolved_at"


@contextlib.contextmanager
def capture() -> Iterator[list[RowChange]]:
    """Collect the row changes `record` is given while the block runs (they are not applied anywhere)."""
    token = _CAPTURED.set([])
    try:
        captured = _CAPTURED.get()
        assert captured is not None
        yield captured
    finally:
        _CAPTURED.reset(token)


def record(change: RowChange) -> bool:
    """Add `change` to the command being captured; False when no capture is running (the caller applies it)."""
    captured = _CAPTURED.get()
    if captured is None:
        return False
    for index, earlier in enumerate(captured):
        if (earlier.table, earlier.id) == (change.table, change.id):
            captured[index] = earlier.model_copy(
                update={"set": {**earlier.set, **change.set}, "expect": {**change.expect, **earlier.expect}}
            )
            return True
    captured.append(change)
    return True


def check_system(system: str) -> str:
    """The command topic of `system`; UnknownSystemError unless it is registered."""
    topic = f"command.{system}"
    if topic not in topics.registry():
        raise UnknownSystemError(
            f"no topic {topic!r} in schemas/topics.yaml for system of record {system!r}; register it there"
        )
    return topic


def enqueue(conn: psycopg.Connection, *, command: Command) -> bool:
    """Write `command` to the outbox (once per idempotency key); True when it is new."""
    check_system(command.system)
    awaiting = sorted({change.entity_ref for change in command.changes})
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO command_outbox (command_id, idempotency_key, system, topic, ticket_id, tenant, tool_name, "
            "action_id, payload, awaiting) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING command_id",
            (
                uuid.UUID(command.command_id),
                command.idempotency_key,
                command.system,
                command.topic,
                command.ticket_id,
                command.tenant,
                command.tool,
                command.action_id,
                Jsonb(command.to_json()),
                awaiting,
            ),
        ).fetchone()
        if inserted is not None:
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return inserted is not None


def _tracked(row: dict[str, Any]) -> TrackedCommand:
    payload = {key: value for key, value in row["payload"].items() if key != "schema_version"}
    return TrackedCommand(
        command=Command.model_validate(payload),
        status=row["status"],
        reason=row["reason"],
        awaiting=row["awaiting"],
        published_at=row["published_at"],
        resolved_at=row["resolved_at"],
    )


def get(conn: psycopg.Connection, *, idempotency_key: str) -> TrackedCommand | None:
    """The outbox row of `idempotency_key`, if any."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM command_outbox WHERE idempotency_key = %s", (idempotency_key,)
        ).fetchone()
    return None if row is None else _tracked(row)


def for_ticket(conn: psycopg.Connection, *, ticket_id: str) -> list[TrackedCommand]:
    """The commands written for ticket `ticket_id` (`<source>:<id>`), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM command_outbox WHERE ticket_id = %s ORDER BY created_at, command_id", (ticket_id,)
        ).fetchall()
    return [_tracked(row) for row in rows]


def unpublished(conn: psycopg.Connection, *, limit: int) -> list[Command]:
    """Commands not yet acknowledged by the broker, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM command_outbox WHERE published_at IS NULL "
            "ORDER BY created_at, command_id LIMIT %s",
            (limit,),
        ).fetchall()
    return [_tracked(row).command for row in rows]


def requeue(conn: psycopg.Connection) -> int:
    """Make every command still waiting for its change due for the relay again (a fresh broker lost them)."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE command_outbox SET published_at = NULL WHERE status IN ('issued', 'escalated') "
            "AND published_at IS NOT NULL"
        )
    return cur.rowcount


def mark_published(conn: psycopg.Connection, *, command_ids: Sequence[str]) -> None:
    """Record that the broker acknowledged these commands."""
    conn.execute(
        "UPDATE command_outbox SET published_at = now() WHERE command_id = ANY(%s) AND published_at IS NULL",
        ([uuid.UUID(c) for c in command_ids],),
    )


def confirm_changes(conn: psycopg.Connection, events: Sequence[Any]) -> list[str]:
    """Tick off the rows these stored entity events bring back; return the keys of the commands now confirmed.

    An event names its command by the `command_key` column its system of record filled in the row.
    """
    arrived: dict[str, set[str]] = {}
    for event in events:
        attributes = getattr(event, "attributes", None) or {}
        key = attributes.get(KEY_COLUMN)
        if getattr(event, "op", None) == "upsert" and isinstance(key, str) and key:
            arrived.setdefault(key, set()).add(f"{event.entity_type}:{event.external_id}")
    confirmed = []
    for key, refs in arrived.items():
        row = conn.execute(
            "UPDATE command_outbox SET awaiting = ARRAY(SELECT unnest(awaiting) EXCEPT SELECT unnest(%s::text[])) "
            "WHERE idempotency_key = %s AND status IN ('issued', 'escalated') RETURNING cardinality(awaiting)",
            (sorted(refs), key),
        ).fetchone()
        if row is not None and row[0] == 0:
            _resolve(conn, key=key, status="confirmed", reason="the change came back through CDC")
            confirmed.append(key)
    return confirmed


def _resolve(conn: psycopg.Connection, *, key: str, status: CommandStatus, reason: str) -> bool:
    row = conn.execute(
        "UPDATE command_outbox SET status = %s, reason = %s, resolved_at = now(), followed_up_at = NULL "
        "WHERE idempotency_key = %s AND status IN ('issued', 'escalated') RETURNING 1",
        (status, reason, key),
    ).fetchone()
    return row is not None


def fail(conn: psycopg.Connection, *, idempotency_key: str, reason: str) -> bool:
    """Mark a command failed (its system rejected it); False when it is unknown or already confirmed or failed."""
    return _resolve(conn, key=idempotency_key, status="failed", reason=reason)


def escalate_overdue(conn: psycopg.Connection, *, older_than_s: float) -> list[str]:
    """Escalate issued commands written over `older_than_s` ago; return their keys."""
    rows = conn.execute(
        "UPDATE command_outbox SET status = 'escalated', resolved_at = now(), "
        "reason = 'no change came back from the system of record in time' "
        "WHERE status = 'issued' AND created_at < now() - %s RETURNING idempotency_key",
        (timedelta(seconds=older_than_s),),
    ).fetchall()
    return [row[0] for row in rows]


def awaiting_follow_up(conn: psycopg.Connection, *, limit: int = 100) -> list[TrackedCommand]:
    """Resolved commands (confirmed, failed, escalated) whose customer has had no follow-up on that outcome yet."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM command_outbox WHERE status <> 'issued' AND followed_up_at IS NULL "
            "ORDER BY resolved_at, command_id LIMIT %s",
            (limit,),
        ).fetchall()
    return [_tracked(row) for row in rows]


def mark_followed_up(conn: psycopg.Connection, *, idempotency_key: str, status: CommandStatus) -> None:
    """Record the follow-up on the command's `status` (a later outcome gets its own)."""
    conn.execute(
        "UPDATE command_outbox SET followed_up_at = now() WHERE idempotency_key = %s AND status = %s",
        (idempotency_key, status),
    )
