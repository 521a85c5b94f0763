"""`worker reference-erp` on the real broker and database: SIGKILLed mid-run, it applies every command once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamdesk.commands.models import Command, RowChange
from streamdesk.kafka import Publisher
from streamdesk.reference_erp import service
from tests.waiting import wait_for

ORDERS = [f"#W{n:07d}" for n in range(30)]
WORLD = {
    "products": {},
    "users": {},
    "orders": {
        o: {"order_id": o, "user_id": "u", "status": "pending", "address": {}, "fulfillments": [],
            "payment_history": [], "items": []}
        for o in ORDERS
    },
}  # fmt: skip


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streamdesk.cli.main", "worker", "reference-erp"], env=env, stdout=out, stderr=out
        )


@pytest.fixture
def erp(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    conn.execute("DROP SCHEMA IF EXISTS erp CASCADE")
    service.ensure_schema(conn)
    service.seed(conn, world=WORLD)
    yield conn
    conn.execute("DROP SCHEMA IF EXISTS erp CASCADE")


@pytest.mark.slow
def test_a_sigkilled_erp_applies_each_command_once_and_logs_each_change_once(
    erp: psycopg.Connection, topics_ready: str, clean_db: str, tmp_path: Path
) -> None:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=topics_ready, DATABASE_URL=clean_db)
    log = tmp_path / "erp.log"
    worker = start(env, log)
    with Publisher(topics_ready, client_id="tests") as publisher:
        for order_id in ORDERS:
            change = RowChange(table="orders", entity_type="order", id=order_id, set={"status": "cancelled"},
                               expect={"status": "pending"})  # fmt: skip
            command = Command(idempotency_key=f"k{order_id}", system="erp", tool="cancel", arguments={},
                              changes=[change], ticket_id="zendesk:1")  # fmt: skip
            publisher.publish(command.topic, command.to_json(), key=command.idempotency_key)
    wait_for(
        lambda: (erp.execute("SELECT count(*) FROM erp.applied_commands").fetchone() or (0,))[0] > 0,
        log=log,
        what="the first command applied",
    )
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    time.sleep(1)
    worker = start(env, log)
    try:
        wait_for(
            lambda: (
                erp.execute(
                    "SELECT count(*) FROM erp.change_log "
                    "WHERE published_at IS NOT NULL AND topic = 'raw.debezium.orders'"
                ).fetchone()
                == (len(ORDERS),)
            ),
            log=log,
            what="every command applied and its change published",
        )
    finally:
        worker.terminate()
        worker.wait(20)
    outcomes = erp.execute("SELECT outcome, count(*) FROM erp.applied_commands GROUP BY outcome").fetchall()
    assert outcomes == [("applied", len(ORDERS))]
    cancelled = erp.execute("SELECT count(*) FROM erp.orders WHERE row->>'status' = 'cancelled'").fetchone()
    assert cancelled == (len(ORDERS),)
