"""The delivery worker on the real stack (Tansu, PostgreSQL, the Zendesk stand-in): each reply posted exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from streamdesk.agent.answers import ANSWER_TOPIC
from streamdesk.delivery.sinks import stamp
from streamdesk.feedback import service as feedback
from streamdesk.identity.models import Principal, Role
from streamdesk.kafka import Publisher
from streamdesk.runtime.supervisor import child_env, stop_process
from tests.delivery.conftest import STANDIN_ENV, Standin
from tests.factories import draft, stored_draft, stored_ticket
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@dataclass
class Workers:
    """Starts `streamdesk worker delivery` (again, after a kill) against the stand-in; all log to `log`."""

    env: dict[str, str]
    log: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            argv = [sys.executable, "-m", "streamdesk.cli.main", "worker", "delivery"]
            self.started.append(subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT))
        return self.started[-1]


@pytest.fixture
def workers(
    conn: psycopg.Connection, topics_ready: str, clean_db: str, standin: Standin, tmp_path: Path
) -> Iterator[Workers]:
    env = child_env(
        KAFKA_BOOTSTRAP_SERVERS=topics_ready,
        DATABASE_URL=clean_db,
        STREAMDESK_STATE_DIR=str(tmp_path / "state"),
        STREAMDESK_DELIVERY__ZENDESK_URL=standin.url,
        STREAMDESK_DELIVERY__SWEEP_INTERVAL_S="1",
        STREAMDESK_DELIVERY__SWEEP_AFTER_S="2",
        **STANDIN_ENV,
    )
    running = Workers(env=env, log=tmp_path / "delivery.log")
    yield running
    for process in running.started:
        stop_process(process, timeout_s=20)


def count(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def auto_replies(conn: psycopg.Connection, n: int, *, first: int = 0) -> list[dict[str, object]]:
    """`answer` topic events of `n` stored auto replies, to tickets 9000 + first ..."""
    events = []
    for i in range(first, first + n):
        ticket = stored_ticket(conn, str(9000 + i), subject="Where is my order?", body="Has it shipped?")
        events.append(draft(ticket, f"Your order {i} shipped on Monday.", status="auto_reply").to_event())
    return events


def publish_answers(bootstrap: str, events: list[dict[str, object]]) -> None:
    with Publisher(bootstrap) as publisher:
        for event in events:
            publisher.publish(ANSWER_TOPIC, event, key=f"zendesk:{event['ticket_id']}")


def test_auto_replies_are_delivered_once_and_a_redelivery_posts_nothing(
    conn: psycopg.Connection, topics_ready: str, standin: Standin, workers: Workers
) -> None:
    log = workers.log
    standin.state.ticket(9003)["status"] = "closed"
    events = auto_replies(conn, 4)
    ticket = stored_ticket(conn, "9050", subject="Refund?", body="When is my refund?")
    events.append(draft(ticket, "A draft waits for review.").to_event())  # a draft does not go out
    workers.start()
    publish_answers(topics_ready, events)
    with Publisher(topics_ready) as publisher:
        publisher.publish(ANSWER_TOPIC, b"{not json", key="bad", validate=False)
    wait_for(lambda: len(standin.state.comments()) == 3, log=log, what="three auto replies delivered")
    wait_for(
        lambda: count(conn, "SELECT count(*) FROM deliveries WHERE status = 'dead_lettered'") == 1,
        log=log,
        what="the reply to the closed ticket dead-lettered",
    )
    assert count(conn, "SELECT count(*) FROM dead_letters WHERE stage = 'delivery'") == 2  # the 422 and the bad payload
    publish_answers(topics_ready, events)  # every event again: redelivery
    publish_answers(topics_ready, auto_replies(conn, 1, first=10))  # then one new reply, delivered after them
    wait_for(lambda: 9010 in standin.state.tickets, log=log, what="the reply after the redelivered ones")
    assert len(standin.state.comments()) == 4
    assert sorted(c["ticket_id"] for c in standin.state.comments()) == [9000, 9001, 9002, 9010]
    assert count(conn, "SELECT count(*) FROM deliveries WHERE status = 'delivered'") == 4
    puts = [r for r in standin.state.received if r["method"] == "PUT"]
    assert len(puts) == 5  # four delivered, one refused; nothing posted twice


def test_an_accepted_and_an_edited_draft_are_delivered(
    conn: psycopg.Connection, topics_ready: str, standin: Standin, workers: Workers
) -> None:
    log = workers.log
    reviewer = Principal(kind="user", id="sam", roles=frozenset({Role.SUPERVISOR}))
    accepted = stored_draft(conn, stored_ticket(conn, "9101", subject="Hi", body="Where?"), "It ships today.")
    edited = stored_draft(conn, stored_ticket(conn, "9102", subject="Hi", body="Refund?"), "Refund soon.")
    workers.start()
    with Publisher(topics_ready) as publisher:
        for answer, kind, text in (
            (accepted, "accepted", None),
            (edited, "edited", "Refund in 5 days; write to a@b.example"),
        ):
            event = feedback.review_event(
                answer=answer, kind=kind, reviewer=reviewer, event_id=f"v-{kind}", edited_text=text
            )
            feedback.record_verdict(conn, event=event, via="api", reviewer=reviewer, publisher=publisher)
    wait_for(lambda: len(standin.state.comments()) == 2, log=log, what="both reviewed drafts delivered")
    bodies = {c["ticket_id"]: c["body"] for c in standin.state.comments()}
    assert bodies[9101].startswith("It ships today.") and stamp(accepted.answer_id) in bodies[9101]
    assert bodies[9102].startswith("Refund in 5 days; write to a@b.example")  # as the reviewer wrote it
    # the vendor has the comment before the worker records its answer: wait for the record, not only the comment
    wait_for(
        lambda: (
            conn.execute("SELECT kind, status FROM deliveries ORDER BY ticket_id").fetchall()
            == [("accepted", "delivered"), ("edited", "delivered")]
        ),
        log=log,
        what="both deliveries recorded as delivered",
    )


def test_a_sigkilled_worker_loses_and_duplicates_nothing(
    conn: psycopg.Connection, topics_ready: str, standin: Standin, workers: Workers
) -> None:
    log = workers.log
    standin.state.delay_s = 0.1
    events = auto_replies(conn, 30)
    worker = workers.start()
    publish_answers(topics_ready, events)
    wait_for(lambda: len(standin.state.comments()) >= 5, log=log, what="some replies delivered")
    worker.kill()
    worker.wait(10)
    killed_at = len(standin.state.comments())
    assert killed_at < 30
    workers.start()
    wait_for(
        lambda: count(conn, "SELECT count(*) FROM deliveries WHERE status = 'delivered'") == 30,
        log=log,
        what="every reply delivered after the restart",
    )
    comments = standin.state.comments()
    assert len(comments) == 30
    assert sorted(c["ticket_id"] for c in comments) == list(range(9000, 9030))
