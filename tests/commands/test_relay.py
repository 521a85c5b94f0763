"""The way back on the real stack: approval -> outbox -> `command.erp` -> reference ERP -> CDC -> confirmed.

Real broker and database, and three real workers (`ingest`, `commands`, `reference-erp`) as subprocesses.
The local copy of an order changes only when the ERP's Debezium event comes back through the ingest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg.types.json import Jsonb

from streamdesk import db, topics
from streamdesk.agent import execution, tools
from streamdesk.agent.answers import Ticket, answers_for_ticket
from streamdesk.agent.models import ToolCall
from streamdesk.commands import service
from streamdesk.identity.models import Principal, Role, agent_for_customer
from streamdesk.kafka import Publisher
from streamdesk.policy import approvals
from streamdesk.reference_erp import service as erp
from streamdesk.runtime.embedded import EmbeddedBroker, free_port
from streamdesk.runtime.supervisor import stop_process
from streamdesk.seed import taubench
from tests.agent.conftest import _INSERT, SOURCE, entity_rows, retail_world
from tests.waiting import wait_for

__all__ = ["retail_world"]
SUPERVISOR = Principal(kind="user", id="sup-1", roles=frozenset({Role.SUPERVISOR}))
REGISTRY = tools.default_registry()


@dataclass
class Stack:
    bootstrap_servers: str
    conn: psycopg.Connection
    log: Path
    workers: dict[str, subprocess.Popen[bytes]]
    user_id: str
    pending: list[str]


def one_customer(world: taubench.World) -> tuple[taubench.World, str, list[str]]:
    """Every product and the first user with two pending orders (and all their orders)."""
    for user in world["users"].values():
        pending = [o for o in user["orders"] if world["orders"][o]["status"] == "pending"]
        if len(pending) >= 2:
            orders = {o: world["orders"][o] for o in user["orders"]}
            return (
                {"products": world["products"], "users": {user["user_id"]: user}, "orders": orders},
                user["user_id"],
                pending,
            )
    raise AssertionError("no user with two pending orders in the world")


@pytest.fixture(scope="module")
def stack(
    database_url: str, retail_world: taubench.World, truncate: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("commands")
    broker = EmbeddedBroker(free_port(), tmp / "tansu.log").start()
    topics.ensure_topics(broker.bootstrap_servers)
    truncate(database_url)
    world, user_id, pending = one_customer(retail_world)
    conn = db.connect(database_url, autocommit=True)
    with conn.cursor() as cur:
        cur.executemany(
            _INSERT,
            [
                (kind, SOURCE, external_id, [1000 + n, 0], f"seed:{external_id}", Jsonb(attributes))
                for n, (kind, external_id, attributes) in enumerate(entity_rows(world))
            ],
        )
    conn.execute("DROP SCHEMA IF EXISTS erp CASCADE")
    erp.ensure_schema(conn)
    erp.seed(conn, world=world)
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, DATABASE_URL=database_url)
    env.update(STREAMDESK_COMMANDS__RELAY_INTERVAL_S="0.2", HF_HUB_OFFLINE="1")
    log = tmp / "workers.log"
    workers = {}
    with log.open("ab") as out:
        for name in ("ingest", "commands", "reference-erp"):
            workers[name] = subprocess.Popen(
                [sys.executable, "-m", "streamdesk.cli.main", "worker", name], env=env, stdout=out, stderr=out
            )
    try:
        yield Stack(broker.bootstrap_servers, conn, log, workers, user_id, pending)
    finally:
        for worker in workers.values():
            stop_process(worker, timeout_s=20)
        broker.stop()
        conn.execute("DROP SCHEMA IF EXISTS erp CASCADE")
        conn.close()
        truncate(database_url)


def order(conn: psycopg.Connection, order_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT attributes, event_id FROM entities WHERE entity_type = 'order' AND external_id = %s", (order_id,)
    ).fetchone()
    assert row is not None
    return {**row[0], "event_id": row[1]}


def propose_cancel(stack: Stack, order_id: str) -> str:
    """The agent proposes to cancel `order_id` for a ticket (a high-risk write: it waits for approval)."""
    ticket = Ticket(source="zendesk", ticket_id=f"T-{order_id}", event_id=f"ev-{uuid.uuid4().hex[:8]}")
    scope = execution.CallScope(
        conn=stack.conn, principal=agent_for_customer(stack.user_id), registry=REGISTRY, ticket=ticket
    )
    read = ToolCall(tool="get_order_details", arguments={"order_id": order_id})
    assert execution.run_call(scope, call=read, source="router", index=0).step.outcome == "ok"
    cancel = ToolCall(tool="cancel_pending_order", arguments={"order_id": order_id, "reason": "no longer needed"})
    proposed = execution.run_call(scope, call=cancel, source="router", index=1)
    assert proposed.step.outcome == "pending_approval" and proposed.action is not None
    return proposed.action.id


def commands_on_topic(stack: Stack) -> list[tuple[bytes, dict[str, Any]]]:
    """Every record on `command.erp`: key and payload."""
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": uuid.uuid4().hex})
    partitions = topics.spec("command.erp").partitions
    consumer.assign([TopicPartition("command.erp", n, OFFSET_BEGINNING) for n in range(partitions)])
    try:
        messages = consumer.consume(100, timeout=5)
    finally:
        consumer.close()
    return [(m.key() or b"", json.loads(m.value() or b"{}")) for m in messages if m.error() is None]


def test_an_approved_cancellation_is_a_command_the_erp_applies_once_and_cdc_confirms(stack: Stack) -> None:
    order_id = stack.pending[0]
    action_id = propose_cancel(stack, order_id)
    approvals.approve(stack.conn, action_id=action_id, approver=SUPERVISOR)

    key = approvals.get_action(stack.conn, action_id=action_id).idempotency_key
    tracked = wait_for(
        lambda: service.get(stack.conn, idempotency_key=key), log=stack.log, what="the approved command in the outbox"
    )
    assert tracked.command.action_id == action_id and tracked.command.system == "erp"
    assert [c.entity_ref for c in tracked.command.changes][-1] == f"order:{order_id}"
    confirmed = wait_for(
        lambda: (t := service.get(stack.conn, idempotency_key=key)) and t.status == "confirmed" and t,
        log=stack.log,
        what="the command confirmed by the ERP's CDC event",
    )
    assert confirmed.awaiting == []
    stored = order(stack.conn, order_id)
    assert stored["status"] == "cancelled" and stored["command_key"] == key
    assert stored["event_id"].startswith("debezium:orders:")
    [(topic_key, payload)] = [(k, p) for k, p in commands_on_topic(stack) if p["idempotency_key"] == key]
    assert topic_key == key.encode() and payload["tool"] == "cancel_pending_order"

    with Publisher(stack.bootstrap_servers, client_id="tests") as publisher:  # the command redelivered
        publisher.publish("command.erp", payload, key=key)
    wait_for(
        lambda: (
            stack.conn.execute("SELECT count(*) FROM erp.applied_commands").fetchone() == (1,)
            and "duplicate" in stack.log.read_text(errors="replace")
        ),
        log=stack.log,
        what="the redelivered command seen by the ERP",
    )
    changed = stack.conn.execute(
        "SELECT count(*) FROM erp.change_log WHERE convert_from(value, 'UTF8')::jsonb->'after'->>'command_key' = %s",
        (key,),
    ).fetchone()
    assert changed is not None and changed[0] == len(confirmed.command.changes)

    follow_ups = wait_for(
        lambda: [a for a in answers_for_ticket(stack.conn, source="zendesk", ticket_id=f"T-{order_id}")],
        log=stack.log,
        what="the follow-up answer",
    )
    assert [a.event_id for a in follow_ups] == [f"follow-up:{key}:confirmed"]
    assert "confirmed" in follow_ups[0].text and follow_ups[0].status == "auto_reply"


def test_a_command_the_erp_refuses_fails_and_the_local_copy_keeps_its_state(stack: Stack) -> None:
    order_id = stack.pending[1]
    stack.conn.execute(  # the order shipped in the ERP meanwhile; streamdesk's copy has not heard of it yet
        "UPDATE erp.orders SET row = jsonb_set(row, '{status}', '\"delivered\"') WHERE id = %s", (order_id,)
    )
    action_id = propose_cancel(stack, order_id)
    approvals.approve(stack.conn, action_id=action_id, approver=SUPERVISOR)
    key = approvals.get_action(stack.conn, action_id=action_id).idempotency_key

    failed = wait_for(
        lambda: (t := service.get(stack.conn, idempotency_key=key)) and t.status == "failed" and t,
        log=stack.log,
        what="the command failed on the ERP's refusal",
    )
    assert failed.reason == f'orders row {order_id} has status "delivered", not "pending"'
    assert order(stack.conn, order_id)["status"] == "pending"
    follow_ups = wait_for(
        lambda: answers_for_ticket(stack.conn, source="zendesk", ticket_id=f"T-{order_id}"),
        log=stack.log,
        what="the follow-up answer",
    )
    assert follow_ups[0].event_id == f"follow-up:{key}:failed" and "could not carry out" in follow_ups[0].text
