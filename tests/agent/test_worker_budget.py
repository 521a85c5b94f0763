"""The agent worker's wall-clock budget on a real broker and database: a slow ticket escalates, the next is answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streamdesk import contracts, db, topics
from streamdesk.agent import answers
from streamdesk.agent.answers import Answer
from streamdesk.audit import service as audit
from streamdesk.contracts import TicketEvent
from streamdesk.kafka import Publisher
from tests.agent.test_worker import as_stored, wait_for

LIMIT_S = 20
ORDER = "#W2974929"
FILLER = "I have been waiting for a long time and I keep checking the tracking page every single day. "


@pytest.fixture(scope="module")
def worker_env() -> dict[str, str]:
    """A worker that reads as much of a ticket as the context holds, within a 20 s budget per answer."""
    return {
        "STREAMDESK_ANSWER__ANSWER_TIMEOUT_S": str(LIMIT_S),
        "STREAMDESK_ANSWER__TICKET_MAX_TOKENS": "100000",
        "STREAMDESK_INGEST__TICKET_TEXT_MAX_CHARS": "100000",
    }


def payload(event_id: str, event_type: Any, body: str) -> dict[str, Any]:
    """A ticket event of one ticket (one key, so one partition: the worker takes them in order)."""
    event = TicketEvent(
        event_id=event_id, source="zendesk", ticket_id="T-77", event_type=event_type, version=[1],
        occurred_at=datetime(2026, 12, 3, 6, 0, tzinfo=UTC), subject="Where is my order?", body="",
        customer_id="fatima_anderson_2157",
    )  # fmt: skip
    return {**event.to_json(), "body": body}  # past this process's own text limit: the worker's applies


@pytest.mark.slow
def test_a_ticket_past_the_wall_clock_budget_escalates_and_the_next_is_answered_in_time(
    stack: tuple[str, str, Path],
) -> None:
    bootstrap, url, log = stack
    slow = payload("zendesk:T-77:created", "created", (f"Where is my order {ORDER}? " + FILLER * 600)[:50_000])
    quick = payload("zendesk:T-77:comment", "comment_added", f"Hi, where is my order {ORDER}? It has not arrived.")
    started = time.monotonic()
    with Publisher(bootstrap, client_id="tests") as publisher:
        for event in (slow, quick):
            publisher.publish(topics.STORED_TICKET, as_stored(event), key="zendesk:T-77")

    def answered(event_id: str) -> Callable[[], Answer | None]:
        def probe() -> Answer | None:
            with db.connect(url) as conn:
                return answers.answer_for_event(conn, event_id=event_id)

        return probe

    escalated = wait_for(answered(slow["event_id"]), timeout_s=300, what="the slow ticket's answer", log=log)
    answer = wait_for(answered(quick["event_id"]), timeout_s=300, what="the next ticket's answer", log=log)
    seconds = time.monotonic() - started
    assert escalated is not None and answer is not None
    contracts.validate("answer.v1.json", escalated.to_event())
    assert escalated.status == "escalated" and "member of our team" in escalated.text
    stopped = [step for step in escalated.trace if step.tool == "(answer budget)"]
    assert stopped and stopped[0].arguments["budget"] == "wall_clock" and stopped[0].arguments["limit_s"] == LIMIT_S
    assert answer.status != "escalated" and any(step.source == "model" for step in answer.trace)
    # the next ticket runs under a budget of its own (how long it waited is `bench agent`'s to measure, not a test's)
    assert not any(step.tool == "(answer budget)" for step in answer.trace), f"next answered after {seconds:.0f}s"
    with db.connect(url) as conn:
        reasons = [r.reason for r in audit.trail(conn, ticket_id="zendesk:T-77") if r.action == "escalation"]
    assert any("wall_clock budget" in str(reason) for reason in reasons)
