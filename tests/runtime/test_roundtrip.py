"""The way back on `streamdesk up`: a signed Zendesk webhook opens a ticket, the reply reaches the local Zendesk
stand-in as one comment, a supervisor approves the change in the API, the command reaches the reference ERP, its
CDC event confirms the action and a follow-up comment is posted; also with the delivery worker and the command
consumer SIGKILLed mid-run (`up` restarts them). Streamdesk's own comment coming back, and a staff comment, are
not answered as the customer's message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import pytest

from evals.bench import roundtrip
from evals.bench.roundtrip import CancelTicket, Supervisor
from streamdesk.delivery.sinks import stamp
from streamdesk.seed import taubench
from tests.runtime.test_durability import Up, up  # noqa: F401 - `up` is a fixture

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def start(up: Up, model_dir: Path, count: int) -> tuple[str, list[CancelTicket]]:  # noqa: F811
    """`up` with the agent and a supervisor operator, the world ingested; the stand-in's URL and `count` tickets."""
    up.start(
        agent=True,
        STREAMDESK_AGENT__MODEL_DIR=str(model_dir),
        STREAMDESK_RUNTIME__BOOTSTRAP_ADAPTER="false",
        STREAMDESK_IDENTITY__OPERATORS=roundtrip.OPERATORS,
    )
    up.ready()
    line = up.wait_for(lambda: roundtrip.STANDIN_LINE.search(up.log()), what="the stand-in's line")
    assert line is not None
    tickets = roundtrip.cancel_tickets(taubench.load_world(path=taubench.world_path(shared_data=None)), count)
    roundtrip.publish_world(f"127.0.0.1:{up.broker_port}", tickets)
    with psycopg_connect(up) as conn:
        up.wait_for(lambda: roundtrip.wait_for_world(conn, tickets), what="the world", timeout_s=600)
    for ticket in tickets:
        response = roundtrip.post_webhook(up.url(""), ticket.webhook(), invocation=f"inv-{ticket.ticket_id}")
        assert response.status_code == 202, response.text
    return line.group(1), tickets


def psycopg_connect(up: Up) -> psycopg.Connection:  # noqa: F811
    return psycopg.connect(host=str(up.state_dir / "postgres"), user="postgres", dbname="postgres", autocommit=True)


def settle(
    up: Up,  # noqa: F811
    standin: str,
    tickets: list[CancelTicket],
    *,
    on_review: Callable[[Supervisor], None] | None = None,
) -> roundtrip.Counts:
    """Review as a supervisor until every ticket has its reply and its follow-up; the final counts."""
    ids = [t.ticket_id for t in tickets]
    supervisor = Supervisor(up.url(""))
    with psycopg_connect(up) as conn:

        def done() -> roundtrip.Counts | None:
            supervisor.review(conn, ticket_ids=ids)
            if on_review is not None:
                on_review(supervisor)
            counts = roundtrip.count_roundtrip(conn, standin_url=standin, ticket_ids=ids)
            finished = counts.delivered == len(ids) and counts.follow_ups == len(ids) == counts.confirmed
            return counts if finished else None

        up.wait_for(done, what="replies, confirmations and follow-ups", timeout_s=1500)
        time.sleep(5)  # a duplicate would come now, if anything were posted or applied twice
        return roundtrip.count_roundtrip(conn, standin_url=standin, ticket_ids=ids)


def test_a_ticket_round_trips_and_streamdesks_own_comment_is_not_answered(up: Up, model_dir: Path) -> None:  # noqa: F811
    standin, [ticket] = start(up, model_dir, 1)
    counts = settle(up, standin, [ticket])
    assert (counts.delivered, counts.duplicates, counts.commands, counts.confirmed) == (1, 0, 1, 1)
    assert (counts.follow_ups, counts.lost, counts.applied_twice) == (1, 0, 0)
    [(_, follow_up)] = up.query(
        "SELECT status, answer_id::text FROM answers WHERE ticket_id = %s AND event_id LIKE 'follow-up:%%'",
        str(ticket.ticket_id),
    )
    comments = [r for t, r in roundtrip.stamped_comments(standin) if t == ticket.ticket_id]
    assert len(comments) == 2 and comments[-1] == follow_up

    at = "2026-12-03T08:00:00Z"
    echoes = [  # the helpdesk tells streamdesk of its own follow-up, and of a staff note
        ("echo", {"id": "1", "is_staff": False}, f"Your order is cancelled.\n\n{stamp(follow_up)}"),
        ("staff", {"id": "424242", "is_staff": True}, "I double-checked, the refund is on its way."),
    ]
    for name, author, text in echoes:
        body = {
            "type": "zen:event-type:ticket.comment_added", "id": f"roundtrip-{name}", "time": at,
            "detail": {"id": str(ticket.ticket_id), "requester_id": str(ticket.requester_id), "updated_at": at},
            "event": {"comment": {"id": name, "body": text, "is_public": True, "author": author}},
        }  # fmt: skip
        response = roundtrip.post_webhook(up.url(""), json.dumps(body).encode(), invocation=f"inv-{name}")
        assert response.status_code == 202, response.text
    staff = "SELECT count(*) FROM conversation_messages WHERE decision = 'staff' AND ticket_id = %s"
    up.wait_for(lambda: up.query(staff, str(ticket.ticket_id))[0][0] == 2, what="both comments in the thread")
    time.sleep(5)
    echo_ids = [f"zendesk:roundtrip-{name}" for name, _, _ in echoes]
    answered = up.query("SELECT count(*) FROM answers WHERE event_id = ANY(%s)", echo_ids)
    assert answered == [(0,)]
    assert len([r for t, r in roundtrip.stamped_comments(standin) if t == ticket.ticket_id]) == 2
    up.interrupt()


def children_named(up: Up, *words: str) -> list[psutil.Process]:  # noqa: F811
    """`up`'s worker processes whose command line holds all of `words`."""
    assert up.process is not None
    found = []
    for child in psutil.Process(up.process.pid).children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if all(word in cmdline for word in words):
            found.append(child)
    return found


def test_sigkilled_delivery_and_command_consumer_post_and_apply_nothing_twice_and_lose_nothing(
    up: Up,  # noqa: F811
    model_dir: Path,
) -> None:
    standin, tickets = start(up, model_dir, 3)
    killed: set[str] = set()

    def kill_mid_run(supervisor: Supervisor) -> None:
        """SIGKILL the delivery worker once a reply is accepted, the ERP once a change is approved (once each)."""
        for name, ready in (("delivery", supervisor.accepted), ("reference-erp", supervisor.approved_at)):
            if ready and name not in killed:
                for process in children_named(up, "worker", name):
                    process.kill()
                    killed.add(name)

    counts = settle(up, standin, tickets, on_review=kill_mid_run)
    assert killed == {"delivery", "reference-erp"}
    assert (counts.delivered, counts.duplicates, counts.lost, counts.applied_twice) == (3, 0, 0, 0)
    assert counts.commands == counts.confirmed == counts.follow_ups == 3
    assert up.count("SELECT count(*) FROM erp.applied_commands WHERE outcome = 'applied'") == 3
    output = up.output.read_text(errors="replace")
    assert "delivery exited with" in output and "reference-erp exited with" in output  # and `up` restarted them
    up.interrupt()
