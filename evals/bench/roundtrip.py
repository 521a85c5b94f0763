"""`streamdesk bench roundtrip`: the way back, end to end, on the system `streamdesk up` starts.

A fresh `up` (embedded broker and database, the agent, the delivery worker and the local Zendesk stand-in,
the command relay and the reference ERP) gets the τ²-bench world, then N signed Zendesk webhooks, each a
customer asking to cancel one of their pending orders and confirming it in the same message. A supervisor
(this script, through the API) accepts each reply and approves each proposed change. Counted from the
stand-in's received requests and the database:

- `delivered`: tickets whose reply was posted; `duplicates`: comments posted more than once;
- `commands`: commands published; `confirmed`: commands the ERP's change event confirmed;
- `lost`: tickets with no reply, or an approved change with no confirmed command or no follow-up comment;
- `reply_p50_s`: webhook accepted -> reply on the stand-in; `confirm_p50_s`: approval -> command confirmed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from streamdesk.contracts import REPLY_STAMP_PREFIX as STAMP_PREFIX
from streamdesk.gateway.signatures import sign_zendesk
from streamdesk.seed import taubench
from streamdesk.seed.service import publish_records, replay
from streamdesk.seed.tickets import ZENDESK_TOPIC, requester_record

T = TypeVar("T")
SECRET = "dev-zendesk-secret"
SUPERVISOR_KEY = "roundtrip-supervisor-key-0123456789"
OPERATORS = json.dumps({"roundtrip-supervisor": {"roles": ["agent", "supervisor"], "token": SUPERVISOR_KEY}})
AUTH = {"X-API-Key": SUPERVISOR_KEY}
FIRST_TICKET = 61001
FIRST_REQUESTER = 71001
STANDIN_LINE = re.compile(r"helpdesk (http://127\.0\.0\.1:\d+)\s+local Zendesk stand-in")
STAMP = re.compile(re.escape(f"[{STAMP_PREFIX}") + r"([^\]]+)\]")
OWN_ENV = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


@dataclass(frozen=True)
class CancelTicket:
    """A customer who asks, in one confirmed message, to cancel a pending order of theirs."""

    ticket_id: int
    requester_id: int
    email: str
    order_id: str
    user: dict[str, Any]

    def webhook(self) -> bytes:
        """The `zen:event-type:ticket.created` webhook Zendesk sends for this ticket."""
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = (
            f"Hello, I placed order {self.order_id} by mistake, I ordered it by mistake. Please cancel order "
            f"{self.order_id}. I confirm the cancellation."
        )
        detail = {
            "id": str(self.ticket_id), "subject": f"Cancel order {self.order_id}", "description": text,
            "requester_id": str(self.requester_id), "actor_id": str(self.requester_id), "status": "NEW",
            "created_at": at, "updated_at": at, "via": {"channel": "web_form"},
        }  # fmt: skip
        body = {"type": "zen:event-type:ticket.created", "id": f"roundtrip-{self.ticket_id}", "time": at}
        return json.dumps(body | {"detail": detail, "subject": f"zen:ticket:{self.ticket_id}"}).encode()


def cancel_tickets(world: taubench.World, count: int) -> list[CancelTicket]:
    """`count` tickets, each from a different customer about one of their pending orders."""
    picked: list[CancelTicket] = []
    seen: set[str] = set()
    for order in world["orders"].values():
        user = world["users"].get(order["user_id"])
        if order["status"] != "pending" or user is None or order["user_id"] in seen or not user.get("email"):
            continue
        seen.add(order["user_id"])
        n = len(picked)
        picked.append(
            CancelTicket(FIRST_TICKET + n, FIRST_REQUESTER + n, str(user["email"]), str(order["order_id"]), user)
        )
        if len(picked) == count:
            break
    return picked


def post_webhook(api_url: str, body: bytes, *, invocation: str) -> httpx.Response:
    """POST a Zendesk webhook to the gateway, signed as Zendesk signs it."""
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "X-Zendesk-Webhook-Signature": sign_zendesk(secret=SECRET, timestamp=moment, body=body),
        "X-Zendesk-Webhook-Signature-Timestamp": moment,
        "X-Zendesk-Webhook-Invocation-Id": invocation,
        "Content-Type": "application/json",
    }
    return httpx.post(f"{api_url}/webhooks/zendesk", content=body, headers=headers, timeout=30)


def publish_world(bootstrap: str, tickets: list[CancelTicket]) -> None:
    """The τ²-bench world as Debezium changes, and the tickets' requesters as Zendesk user records."""
    replay(bootstrap_servers=bootstrap, what=["taubench"], progress=False)
    moment = "2026-01-15T09:00:00Z"
    records = [requester_record(t.user, email=t.email, requester_id=t.requester_id, moment=moment) for t in tickets]
    publish_records(bootstrap_servers=bootstrap, records=records)
    assert all(r.topic == ZENDESK_TOPIC for r in records)


def stamped_comments(standin_url: str) -> list[tuple[int, str]]:
    """(ticket id, reply id) of every comment the stand-in received, in order."""
    got = httpx.get(f"{standin_url}/_standin/requests", timeout=10).json()["comments"]
    found = [(int(c["ticket_id"]), STAMP.search(str(c["body"]))) for c in got]
    return [(ticket, match.group(1)) for ticket, match in found if match]


@dataclass
class Counts:
    """What the stand-in and the database hold for the bench's tickets."""

    tickets: int
    delivered: int
    duplicates: int
    commands: int
    confirmed: int
    applied_twice: int
    follow_ups: int
    lost: int


def count_roundtrip(conn: psycopg.Connection, *, standin_url: str, ticket_ids: list[int]) -> Counts:
    """Count delivered, duplicated and lost replies and commands of `ticket_ids`."""
    comments = [(t, r) for t, r in stamped_comments(standin_url) if t in ticket_ids]
    posted = Counter(reply for _, reply in comments)
    keys = [f"zendesk:{t}" for t in ticket_ids]
    names = [str(t) for t in ticket_ids]
    rows = conn.execute(
        "SELECT status, count(*) FROM command_outbox WHERE ticket_id = ANY(%s) OR ticket_id = ANY(%s) GROUP BY status",
        (keys, names),
    ).fetchall()
    statuses: dict[str, int] = {str(status): int(n) for status, n in rows}
    commands = sum(statuses.values())
    applied_twice = conn.execute(
        "SELECT count(*) FROM (SELECT command_key, topic, key FROM erp.change_log GROUP BY command_key, topic, key "
        "HAVING count(*) > 1) AS twice"
    ).fetchone()
    follow_ups = conn.execute(
        "SELECT answer_id::text FROM answers WHERE ticket_id = ANY(%s) AND event_id LIKE 'follow-up:%%'", (names,)
    ).fetchall()
    delivered_tickets = {t for t, _ in comments}
    follow_ups_posted = sum(1 for (answer_id,) in follow_ups if posted[answer_id])
    approved = conn.execute(
        "SELECT count(*) FROM pending_actions WHERE status IN ('approved', 'executed') AND ticket_id = ANY(%s)",
        (names + keys,),
    ).fetchone()
    lost = (len(ticket_ids) - len(delivered_tickets)) + max(0, int(approved[0] if approved else 0) - follow_ups_posted)
    return Counts(
        tickets=len(ticket_ids),
        delivered=len(delivered_tickets),
        duplicates=sum(n - 1 for n in posted.values()),
        commands=commands,
        confirmed=statuses.get("confirmed", 0),
        applied_twice=int(applied_twice[0]) if applied_twice else 0,
        follow_ups=follow_ups_posted,
        lost=lost,
    )


@dataclass
class UpProcess:
    """`streamdesk up --agent` on a state dir of its own: what the bench (and a user) runs."""

    state_dir: Path
    broker_port: int
    api_port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    agent: bool = True

    @property
    def output(self) -> Path:
        return self.state_dir / "up.out"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def start(self) -> None:
        environ = {k: v for k, v in os.environ.items() if k not in OWN_ENV} | {
            "STREAMDESK_STATE_DIR": str(self.state_dir),
            "STREAMDESK_KAFKA__EMBEDDED_PORT": str(self.broker_port),
            "STREAMDESK_API_PORT": str(self.api_port),
            "STREAMDESK_IDENTITY__OPERATORS": OPERATORS,
            "STREAMDESK_RUNTIME__BOOTSTRAP_ADAPTER": "false",
            **self.env,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "streamdesk.cli.main", "up", "--agent" if self.agent else "--no-agent"]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(argv, env=environ, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-4000:] if self.output.exists() else ""

    def wait_for(self, probe: Callable[[], T], *, what: str, timeout_s: float = 600.0) -> T:
        """Poll `probe` until it returns something truthy; raise with `up`'s output if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                result = probe()
                if result:
                    return result
            except (httpx.HTTPError, psycopg.OperationalError):
                pass
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"up exited while waiting for {what}:\n{self.log()}")
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what}; up's output:\n{self.log()}")

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.state_dir / "postgres"), user="postgres", dbname="postgres", autocommit=True
        )

    def ready(self) -> str:
        """Wait for the API; the stand-in's URL `up` printed."""
        self.wait_for(lambda: httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200, what="the API")
        line = self.wait_for(lambda: STANDIN_LINE.search(self.log()), what="the stand-in's line")
        assert line is not None
        return line.group(1)

    def stop(self, *, timeout_s: float = 300.0) -> None:
        """SIGINT, as Ctrl-C sends it; SIGKILL if it does not drain in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


def wait_for_world(conn: psycopg.Connection, tickets: list[CancelTicket]) -> bool:
    """True once streamdesk's copy holds every ticket's order and requester."""
    orders = [t.order_id for t in tickets]
    requesters = [f"user:{t.requester_id}" for t in tickets]
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE entity_type = 'order' AND external_id = ANY(%s)), "
        "count(*) FILTER (WHERE entity_type = 'customer' AND external_id = ANY(%s)) FROM entities",
        (orders, requesters),
    ).fetchone()
    return row is not None and row[0] == len(orders) and row[1] == len(requesters)


@dataclass
class Supervisor:
    """The human side, through the API: accepts each reply that waits for a verdict, approves each change."""

    api_url: str
    approved_at: dict[str, float] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)

    def review(self, conn: psycopg.Connection, *, ticket_ids: list[int]) -> None:
        """Accept the tickets' drafts and approve their pending actions (each once)."""
        answers = conn.execute(
            "SELECT answer_id::text, status FROM answers WHERE ticket_id = ANY(%s) AND status <> 'auto_reply'",
            ([str(t) for t in ticket_ids],),
        ).fetchall()
        for answer_id, _ in answers:
            if answer_id not in self.accepted:
                response = httpx.post(f"{self.api_url}/answers/{answer_id}/accept", headers=AUTH, timeout=30)
                if response.status_code in (202, 409):
                    self.accepted.add(answer_id)
        pending = conn.execute(
            "SELECT id::text FROM pending_actions WHERE status = 'pending' AND ticket_id = ANY(%s)",
            ([str(t) for t in ticket_ids] + [f"zendesk:{t}" for t in ticket_ids],),
        ).fetchall()
        for (action_id,) in pending:
            if action_id not in self.approved_at:
                response = httpx.post(f"{self.api_url}/approvals/{action_id}/approve", headers=AUTH, timeout=30)
                if response.status_code == 200:
                    self.approved_at[action_id] = time.monotonic()


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def run(*, tickets: int = 20, timeout_s: float = 1800.0, shared_data: Path | None = None) -> dict[str, Any]:
    """Start `up`, send `tickets` confirmed cancellations, review them, and count the round trip."""
    world = taubench.load_world(path=taubench.world_path(shared_data=shared_data))
    sample = cancel_tickets(world, tickets)
    ticket_ids = [t.ticket_id for t in sample]
    with tempfile.TemporaryDirectory(prefix="streamdesk-roundtrip-") as tmp:
        up = UpProcess(
            Path(tmp) / "state",
            broker_port=int(os.environ.get("ROUNDTRIP_BROKER_PORT", "19792")),
            api_port=int(os.environ.get("ROUNDTRIP_API_PORT", "8107")),
        )
        up.start()
        try:
            standin = up.ready()
            publish_world(up.bootstrap, sample)
            with up.connect() as conn:
                up.wait_for(lambda: wait_for_world(conn, sample), what="the world in streamdesk's copy")
                sent: dict[int, float] = {}
                for ticket in sample:
                    response = post_webhook(up.api_url, ticket.webhook(), invocation=f"inv-{ticket.ticket_id}")
                    response.raise_for_status()
                    sent[ticket.ticket_id] = time.monotonic()
                supervisor = Supervisor(up.api_url)
                replied: dict[int, float] = {}
                confirmed_at: dict[str, float] = {}
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    supervisor.review(conn, ticket_ids=ticket_ids)
                    now = time.monotonic()
                    for ticket_id, _ in stamped_comments(standin):
                        if ticket_id in sent and ticket_id not in replied:
                            replied[ticket_id] = now
                    rows = conn.execute(
                        "SELECT action_id FROM command_outbox WHERE status = 'confirmed' AND action_id = ANY(%s)",
                        (list(supervisor.approved_at),),
                    ).fetchall()
                    for (action_id,) in rows:
                        confirmed_at.setdefault(action_id, now)
                    counts = count_roundtrip(conn, standin_url=standin, ticket_ids=ticket_ids)
                    settled = counts.commands == counts.confirmed == counts.follow_ups == len(supervisor.approved_at)
                    if len(replied) == len(sample) and settled and counts.follow_ups:
                        break
                    time.sleep(0.5)
                time.sleep(3)  # a duplicate would come now, if anything were posted twice
                counts = count_roundtrip(conn, standin_url=standin, ticket_ids=ticket_ids)
        finally:
            up.stop()
    reply_s = [replied[t] - sent[t] for t in replied]
    confirm_s = [confirmed_at[a] - supervisor.approved_at[a] for a in confirmed_at]
    return {
        "tickets": counts.tickets,
        "delivered": counts.delivered,
        "duplicates": counts.duplicates,
        "commands": counts.commands,
        "confirmed": counts.confirmed,
        "lost": counts.lost,
        "applied_twice": counts.applied_twice,
        "approved": len(supervisor.approved_at),
        "follow_ups": counts.follow_ups,
        "reply_p50_s": _p50(reply_s),
        "confirm_p50_s": _p50(confirm_s),
    }
