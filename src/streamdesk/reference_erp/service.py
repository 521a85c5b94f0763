"""The reference ERP: its own tables (schema `erp`), seeded from the same world as streamdesk's copy.

It applies a command at most once per idempotency key, in one transaction: every row must still hold the
values the command expects (an order already delivered is not cancelled), else the command is refused
with the reason. An applied change fills the row's `command_key` column with the key and is logged as the
Debezium PostgreSQL change event a CDC connector would capture (`erp.change_log`, an LSN per change);
a refusal is logged as a `command.outcome` record. `publish_log` puts the log on the broker, in LSN
order, at least once, so nothing is lost when the consumer dies between its commit and the broker's ack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from streamdesk.commands.models import KEY_COLUMN, OUTCOME_TOPIC, Command, CommandOutcome
from streamdesk.kafka import Publisher
from streamdesk.seed import taubench
from streamdesk.seed.wire import DebeziumLog, dumps

SCHEMA = "erp"
TABLES = ("customers", "orders", "order_items", "products")
FIRST_LSN = 1 << 36
"""The ERP's LSNs start above any the seed's snapshot uses, so its changes are newer than the seeded rows."""
SERVER = "erp"


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the ERP's schema, tables, applied-command ledger and change log when missing."""
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        for table in TABLES:
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, row jsonb NOT NULL)").format(
                    sql.Identifier(SCHEMA, table)
                )
            )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS erp.applied_commands (idempotency_key text PRIMARY KEY, "
            "outcome text NOT NULL, reason text, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS erp.change_log (lsn bigint PRIMARY KEY, command_key text NOT NULL, "
            "topic text NOT NULL, key bytea, value bytea, published_at timestamptz)"
        )
        conn.execute(f"CREATE SEQUENCE IF NOT EXISTS erp.lsn START {FIRST_LSN}")


def seed(conn: psycopg.Connection, *, world: taubench.World) -> int:
    """Load the world's rows when the ERP holds none yet; return how many rows were loaded."""
    with conn.transaction():
        if conn.execute("SELECT EXISTS (SELECT 1 FROM erp.orders)").fetchone() == (True,):
            return 0
        rows = [(table, row) for table, row in taubench.table_rows(world) if table in TABLES]
        with conn.cursor() as cur:
            for table in TABLES:
                cur.executemany(
                    sql.SQL("INSERT INTO {} (id, row) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING").format(
                        sql.Identifier(SCHEMA, table)
                    ),
                    [(str(row["id"]), Jsonb(row)) for name, row in rows if name == table],
                )
    return len(rows)


def _row(conn: psycopg.Connection, table: str, row_id: str) -> dict[str, Any] | None:
    if table not in TABLES:
        return None
    found = conn.execute(
        sql.SQL("SELECT row FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(SCHEMA, table)), (row_id,)
    ).fetchone()
    return None if found is None else dict(found[0])


def _refusal(before: Mapping[str, Any] | None, *, table: str, row_id: str, expect: Mapping[str, Any]) -> str | None:
    if before is None:
        return f"{table} row {row_id} does not exist"
    for column, value in expect.items():
        if before.get(column) != value:
            return f"{table} row {row_id} has {column} {json.dumps(before.get(column))}, not {json.dumps(value)}"
    return None


def _log(
    conn: psycopg.Connection, *, command_key: str, topic: str, key: bytes | None, value: bytes | None, lsn: int
) -> None:
    conn.execute(
        "INSERT INTO erp.change_log (lsn, command_key, topic, key, value) VALUES (%s, %s, %s, %s, %s)",
        (lsn, command_key, topic, key, value),
    )


def _next_lsn(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT nextval('erp.lsn')").fetchone()
    assert row is not None
    return int(row[0])


def apply(conn: psycopg.Connection, *, command: Command) -> str:
    """Apply `command` once: 'applied', 'rejected', or 'duplicate' when its key was handled before.

    A duplicate changes nothing; what it logged is published again (same LSNs: a consumer that has them
    ignores them), so a command redelivered after the broker lost the first change events still comes back.
    """
    with conn.transaction():
        handled = conn.execute(
            "INSERT INTO erp.applied_commands (idempotency_key, outcome) VALUES (%s, 'pending') "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1",
            (command.idempotency_key,),
        ).fetchone()
        if handled is None:
            conn.execute(
                "UPDATE erp.change_log SET published_at = NULL WHERE command_key = %s", (command.idempotency_key,)
            )
            return "duplicate"
        befores = [_row(conn, change.table, change.id) for change in command.changes]
        for change, before in zip(command.changes, befores, strict=True):
            reason = _refusal(before, table=change.table, row_id=change.id, expect=change.expect)
            if reason is not None:
                outcome = CommandOutcome(
                    idempotency_key=command.idempotency_key, system=SERVER, status="rejected", reason=reason
                )
                _log(
                    conn,
                    command_key=command.idempotency_key,
                    topic=OUTCOME_TOPIC,
                    key=command.idempotency_key.encode(),
                    value=dumps(outcome.to_json()),
                    lsn=_next_lsn(conn),
                )
                conn.execute(
                    "UPDATE erp.applied_commands SET outcome = 'rejected', reason = %s WHERE idempotency_key = %s",
                    (reason, command.idempotency_key),
                )
                return "rejected"
        tx_row = conn.execute("SELECT txid_current()").fetchone()
        assert tx_row is not None
        for change, before in zip(command.changes, befores, strict=True):
            assert before is not None
            after = {**before, **change.set, KEY_COLUMN: command.idempotency_key}
            conn.execute(
                sql.SQL("UPDATE {} SET row = %s WHERE id = %s").format(sql.Identifier(SCHEMA, change.table)),
                (Jsonb(after), change.id),
            )
            lsn = _next_lsn(conn)
            log = DebeziumLog(server=SERVER, database=SERVER, lsn=lsn - 1, lsn_step=1, tx_id=int(tx_row[0]) - 1,
                              ts_ms=int(time.time() * 1000))  # fmt: skip
            record = log.update(change.table, before, after)
            key = command.idempotency_key
            _log(conn, command_key=key, topic=record.topic, key=record.key, value=record.value, lsn=lsn)
        conn.execute(
            "UPDATE erp.applied_commands SET outcome = 'applied' WHERE idempotency_key = %s", (command.idempotency_key,)
        )
    return "applied"


def publish_log(conn: psycopg.Connection, *, publisher: Publisher, limit: int = 1000) -> int:
    """Publish the change log's unpublished records in LSN order and mark them once the broker acknowledged."""
    rows = conn.execute(
        "SELECT lsn, topic, key, value FROM erp.change_log WHERE published_at IS NULL ORDER BY lsn LIMIT %s", (limit,)
    ).fetchall()
    for _, topic, key, value in rows:
        publisher.publish(topic, bytes(value) if value is not None else None, key=bytes(key) if key else None)
    if rows:
        publisher.flush()
        with conn.transaction():
            conn.execute(
                "UPDATE erp.change_log SET published_at = now() WHERE lsn = ANY(%s)", ([row[0] for row in rows],)
            )
    return len(rows)
