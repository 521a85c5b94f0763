"""The audit relay worker publishes what the API appends to the audit trail, with no ticket arriving."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.audit.publisher import AUDIT_TOPIC
from tests.api.conftest import Stack, auth


def read_audit_topic(bootstrap: str) -> list[dict[str, Any]]:
    """Every record on the one-partition `audit` topic, read until it is quiet (Tansu's high watermark lags)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-audit-relay", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(AUDIT_TOPIC, 0, 0)])
        found: list[dict[str, Any]] = []
        while (message := consumer.poll(1.0)) is not None:
            if message.error() is None:
                found.append(json.loads(message.value() or b"null"))
        return found
    finally:
        consumer.close()


@pytest.fixture
def audit_relay(stack: Stack, tmp_path: Path) -> Iterator[Path]:
    """A running `streamdesk worker audit-relay` on the stack's broker and database; yields its log."""
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=stack.bootstrap, DATABASE_URL=stack.database_url)
    log = tmp_path / "audit-relay.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streamdesk.cli.main", "worker", "audit-relay"], env=env, stdout=out, stderr=out
        )
    try:
        yield log
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            assert worker.wait(20) == 0, log.read_text()
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
            raise


def audit_topic_until(bootstrap: str, *, done: Any, timeout_s: float, log: Path) -> list[dict[str, Any]]:
    """The records on the `audit` topic once `done(records)` holds; fails with the worker's log after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_audit_topic(bootstrap)
        if done(records):
            return records
        if time.monotonic() > deadline:
            pytest.fail(f"the audit topic never held what was expected; it holds {records}\n{log.read_text()}")
        time.sleep(0.5)


def test_an_api_denial_reaches_the_audit_topic_through_the_audit_relay(stack: Stack, audit_relay: Path) -> None:
    refused = stack.client.get("/approvals", headers=auth("viewer"))
    assert refused.status_code == 403
    with db.connect(stack.database_url) as conn:
        last = audit.last_seq(conn)
    assert last >= 1

    def denied(records: list[dict[str, Any]]) -> bool:
        return any(r["action"] == "rbac_decision" and "/approvals" in str(r.get("tool_name")) for r in records)

    records = audit_topic_until(stack.bootstrap, done=denied, timeout_s=30, log=audit_relay)
    assert [r["seq"] for r in records] == list(range(1, last + 1))  # the whole chain, in order, each record once
    started = time.monotonic()
    assert stack.client.get("/approvals", headers=auth("viewer")).status_code == 403
    records = audit_topic_until(stack.bootstrap, done=lambda found: len(found) > last, timeout_s=30, log=audit_relay)
    assert [r["seq"] for r in records] == list(range(1, last + 2))
    assert time.monotonic() - started < 10  # woken by the commit, not by a ticket
