"""`streamdesk up` as a user runs it: SIGINT with events and webhooks in flight, SIGKILL of its broker.

Each test starts the real `up` (embedded Tansu and PostgreSQL in its own state dir, free ports) and checks
the store, not the logs: nothing acknowledged (HTTP 202 or a broker ack) is lost, nothing is duplicated,
and accepted tickets are answered once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import psycopg
import pytest

from streamdesk.audit import publisher as audit_publisher
from streamdesk.contracts import EntityEvent
from streamdesk.gateway import signatures
from streamdesk.kafka import Publisher
from streamdesk.runtime.embedded import free_port
from tests.waiting import WAIT_S

pytestmark = [pytest.mark.slow, pytest.mark.stack]
T = TypeVar("T")
SECRET = "dev-zendesk-secret"
API_KEY = "agent-api-key-0123456789"
OPERATORS = json.dumps({"agent-op": {"roles": ["agent"], "token": API_KEY}})
OWN_ENV = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


@dataclass
class Up:
    """One `streamdesk up` process on a state dir and ports of its own."""

    state_dir: Path
    broker_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def output(self) -> Path:
        return self.state_dir / f"up-{self.runs}.out"

    def start(self, *, agent: bool, **env: str) -> None:
        self.runs += 1
        environ = {k: v for k, v in os.environ.items() if k not in OWN_ENV} | {
            "STREAMDESK_STATE_DIR": str(self.state_dir),
            "STREAMDESK_KAFKA__EMBEDDED_PORT": str(self.broker_port),
            "STREAMDESK_API_PORT": str(self.api_port),
            "STREAMDESK_INGEST__TORCH_THREADS": "1",
            "STREAMDESK_AGENT__TORCH_THREADS": "1",
            "STREAMDESK_RUNTIME__DRAIN_TIMEOUT_S": "180",
            "STREAMDESK_IDENTITY__OPERATORS": OPERATORS,
            **env,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "streamdesk.cli.main", "up", "--agent" if agent else "--no-agent"]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(argv, env=environ, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-4000:] if self.output.exists() else ""

    def wait_for(self, probe: Callable[[], T], *, what: str, timeout_s: float = WAIT_S) -> T:
        """Poll `probe` until it returns something truthy; fail with `up`'s output if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                result = probe()
                if result:
                    return result
            except (httpx.HTTPError, psycopg.OperationalError):
                pass
            assert self.process is not None and self.process.poll() is None, f"up exited:\n{self.log()}"
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}; up's output:\n{self.log()}")

    def ready(self) -> None:
        self.wait_for(lambda: httpx.get(self.url("/readyz"), timeout=2).status_code == 200, what="the API")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}{path}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(host=str(self.state_dir / "postgres"), user="postgres", dbname="postgres") as conn:
            return conn.execute(sql, params).fetchall()

    def count(self, sql: str) -> int:
        return int(self.query(sql)[0][0])

    def interrupt(self, *, timeout_s: float = 300.0) -> str:
        """SIGINT, as Ctrl-C sends it; wait for `up` to drain and exit 0; return its output."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"up did not stop within {timeout_s}s:\n{self.log()}")
        output = self.output.read_text(errors="replace")
        assert code == 0, output[-4000:]
        return output

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    stack = Up(tmp_path / "state")
    try:
        yield stack
    finally:
        if stack.process is not None and stack.process.poll() is None:
            stack.interrupt(timeout_s=120)


def zendesk_ticket(number: int) -> str:
    """A signed-to-be Zendesk ticket.created webhook whose requester is no known customer (escalated)."""
    at = "2026-12-03T06:00:00Z"
    detail = {"id": str(7000 + number), "subject": f"Parcel {number} missing", "description": "Where is it?"}
    detail |= {"requester_id": f"90{number}", "status": "NEW", "created_at": at, "updated_at": at}
    return json.dumps({"type": "zen:event-type:ticket.created", "id": f"evt-{number}", "time": at, "detail": detail})


def post_ticket(up: Up, number: int) -> httpx.Response:
    body = zendesk_ticket(number).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "X-Zendesk-Webhook-Signature": signatures.sign_zendesk(secret=SECRET, timestamp=stamp, body=body),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Invocation-Id": f"inv-{number}",
        "Content-Type": "application/json",
    }
    return httpx.post(up.url("/webhooks/zendesk"), content=body, headers=headers, timeout=30)


def submit_ticket(up: Up, number: int) -> httpx.Response:
    """POST /tickets as an operator: a ticket from no known customer (escalated)."""
    body = {"subject": f"Refund {number}?", "body": "Please.", "ticket_id": f"API-{number}"}
    return httpx.post(up.url("/tickets"), json=body, headers={"X-API-Key": API_KEY}, timeout=30)


def customers(first: int, count: int) -> Iterator[EntityEvent]:
    for n in range(first, first + count):
        yield EntityEvent(
            event_id=f"erp:customer:c{n}:1",
            source="erp",
            entity_type="customer",
            external_id=f"c{n}",
            op="upsert",
            version=[n, 0],
            occurred_at=datetime(2026, 12, 3, 6, 0, tzinfo=UTC),
            attributes={"name": f"Customer {n}", "email": f"c{n}@example.com"},
        )


def publish_acked(up: Up, events: Iterator[EntityEvent]) -> int:
    """Publish to canonical.entity and wait for the broker's acknowledgement of every one."""
    with Publisher(f"127.0.0.1:{up.broker_port}", client_id="durability-test") as publisher:
        for event in events:
            publisher.publish("canonical.entity", event.to_json(), key=event.key)
        publisher.flush()
        return publisher.delivered


def test_sigint_with_events_and_webhooks_in_flight_loses_and_duplicates_nothing(up: Up, model_dir: Path) -> None:
    up.start(agent=False, STREAMDESK_RUNTIME__WORKERS="2")  # two ingest workers share the partitions
    up.ready()
    assert publish_acked(up, customers(0, 150)) == 150
    accepted = [post_ticket(up, n) for n in range(5)] + [submit_ticket(up, n) for n in range(2)]
    assert [r.status_code for r in accepted] == [202] * 7
    assert publish_acked(up, customers(150, 150)) == 150
    assert "started ingest-2" in up.log()
    output = up.interrupt()  # in flight: the ingest workers may still be loading their embedder
    assert output.index("stopping: intake (api) first") < output.index("draining:") < output.index("stopping workers")
    assert "drained in" in output

    up.start(agent=True, STREAMDESK_AGENT__MODEL_DIR=str(model_dir), STREAMDESK_RUNTIME__BOOTSTRAP_ADAPTER="false")
    up.ready()
    answered = "SELECT count(*) FROM answers WHERE published_at IS NOT NULL"
    up.wait_for(lambda: up.count(answered) >= 7, what="answers to the seven accepted tickets", timeout_s=600)
    time.sleep(3)  # a duplicate would come now, if anything were answered twice
    assert up.count("SELECT count(*) FROM entities WHERE entity_type = 'customer'") == 300
    assert up.count("SELECT count(*) FROM ticket_events") == 7
    assert up.count("SELECT count(*) FROM tickets") == 7
    rows = sorted(up.query("SELECT ticket_id, count(*) FROM answers GROUP BY ticket_id"))
    assert rows == sorted([(f"API-{n}", 1) for n in range(2)] + [(str(7000 + n), 1) for n in range(5)])
    assert up.count("SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NULL") == 0
    assert up.count("SELECT count(*) FROM dead_letters") == 0
    up.interrupt()


def test_webhooks_and_api_tickets_survive_a_sigkill_of_the_embedded_broker(up: Up) -> None:
    up.start(agent=False)
    up.ready()
    assert [post_ticket(up, n).status_code for n in range(3)] == [202] * 3
    up.wait_for(lambda: up.count("SELECT count(*) FROM ticket_events") == 3, what="the first tickets")
    listener = f"tcp://127.0.0.1:{up.broker_port}"
    [tansu] = [p for p in psutil.process_iter(["cmdline"]) if listener in (p.info["cmdline"] or [])]
    tansu.kill()
    accepted = [post_ticket(up, n) for n in range(3, 8)] + [submit_ticket(up, 1)]  # broker down or just back
    assert [r.status_code for r in accepted] == [202] * 6
    up.wait_for(lambda: up.count("SELECT count(*) FROM ticket_events") == 9, what="the tickets sent around the kill")
    assert up.count("SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NULL") == 0
    assert up.count("SELECT count(*) FROM tickets") == 9
    assert "the embedded broker died" in up.log()
    up.interrupt()


def test_an_api_denial_reaches_the_audit_topic_through_the_audit_relay_up_runs(up: Up) -> None:
    up.start(agent=False)  # no agent, no ticket: only the audit relay can publish the API's record
    up.ready()
    assert httpx.get(up.url("/audit"), headers={"X-API-Key": API_KEY}, timeout=30).status_code == 403
    up.wait_for(lambda: up.count("SELECT count(*) FROM audit_records") >= 1, what="the denial's audit record")
    published = f"127.0.0.1:{up.broker_port}"
    up.wait_for(
        lambda: audit_publisher.last_published_seq(published) == up.count("SELECT max(seq) FROM audit_records"),
        what="the audit record on the audit topic",
        timeout_s=60,
    )
    output = up.interrupt()
    assert "drained in" in output and "audit record published" in output
