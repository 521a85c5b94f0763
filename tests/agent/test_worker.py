"""The agent worker as a real process on a real broker and database: answers once, publishes, keeps the trace."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from connectors.zendesk import ZendeskConnector
from streamdesk import contracts, db, telemetry, topics
from streamdesk.agent import answers, conversations
from streamdesk.agent.answers import Answer, TraceStep
from streamdesk.audit import service as audit
from streamdesk.config import get_settings
from streamdesk.contracts import Requester, TicketEvent
from streamdesk.kafka import Publisher
from streamdesk.streams.messages import RawMessage
from tests import factories
from tests.waiting import wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EMAIL = "fatima.anderson1447@example.com"
ORDER = "#W2974929"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_an_answer_event_matches_its_schema() -> None:
    step = TraceStep(index=0, source="router", tool="get_order_details", arguments={"order_id": ORDER}, outcome="ok")
    fields = {"citations": ["kb:a#0"], "trace": [step], "prompt_version": "retail-agent-1+abc"}
    answer = factories.draft(factories.ticket_event("T-1", event_id="e1"), "Hello", **fields)
    contracts.validate("answer.v1.json", answer.to_event())
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "answer.v1.json").read_text())
    assert set(schema["properties"]) == set(answer.to_event())
    assert set(schema["properties"]["tool_trace"]["items"]["properties"]) == set(TraceStep.model_fields)
    assert topics.spec("answer").schema == "answer.v1.json"


def test_trace_context_round_trips_through_message_headers() -> None:
    context = telemetry.extract_context([("traceparent", TRACEPARENT.encode()), ("seq", b"7")])
    with telemetry.tracer("tests").start_as_current_span("hop", context=context):
        headers = telemetry.inject_headers({"answer_id": "a1"})
        trace_id, span_id = telemetry.span_ids()
    assert trace_id == TRACE_ID and headers["traceparent"].split("-")[1:3] == [TRACE_ID, span_id]
    assert headers["answer_id"] == "a1"
    assert telemetry.otlp_traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"


def test_an_event_keeps_its_first_answer(clean_db: str) -> None:
    first = Answer(
        event_id="e1", source="zendesk", ticket_id="T-1", status="draft", text="one", model="m", prompt_version="p"
    )
    second = first.model_copy(update={"answer_id": str(uuid.uuid4()), "text": "two"})
    with db.connect(clean_db, autocommit=True) as conn:
        assert answers.store_answer(conn, answer=first) == (first, True)
        stored, new = answers.store_answer(conn, answer=second)
        assert not new and stored.answer_id == first.answer_id and stored.text == "one"
        assert not answers.is_published(conn, answer_id=first.answer_id)
        answers.mark_published(conn, answer_id=first.answer_id)
        assert answers.is_published(conn, answer_id=first.answer_id)
        assert [a.answer_id for a in answers.answers_for_ticket(conn, source="zendesk", ticket_id="T-1")] == [
            first.answer_id
        ]


def read_topic(bootstrap: str, topic: str, *, until: Callable[[list[Any]], bool], timeout_s: float) -> list[Any]:
    """Messages of `topic` from the start, until `until(messages)` holds or the time is up."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(messages):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


def ticket_event(event_id: str, event_type: Any = "created") -> TicketEvent:
    return TicketEvent(
        event_id=event_id,
        source="zendesk",
        ticket_id="T-9",
        event_type=event_type,
        version=[1],
        occurred_at=NOW,
        subject="Where is my order?",
        body=f"Hi, where is my order {ORDER}? It has not arrived yet.",
        requester=Requester(email=EMAIL),
    )


def as_stored(event: dict[str, Any]) -> dict[str, Any]:
    """A `ticket.stored` record of `event`, as the ingest ticket hop publishes it once it stored the event alone."""
    fields = ("subject", "status", "priority", "assignee_id", "requester", "customer_id", "tenant")
    ticket = {name: event[name] for name in fields if event.get(name) is not None}
    return {"schema_version": 1, "event": event, "ticket": {"version": event["version"], **ticket}}


@pytest.mark.slow
def test_the_worker_answers_once_publishes_and_keeps_the_trace(stack: tuple[str, str, Path]) -> None:
    bootstrap, url, log = stack
    created = ticket_event("zendesk:T-9:created")
    with Publisher(bootstrap, client_id="tests") as publisher:
        for event in (created, created, ticket_event("zendesk:T-9:status", "status_changed")):
            value = as_stored(event.to_json())
            publisher.publish(topics.STORED_TICKET, value, key=event.key, headers={"traceparent": TRACEPARENT})
        publisher.publish(topics.STORED_TICKET, b'{"schema_version": 1, "event_id": "broken"}', key="zendesk:T-9")

    def answered() -> list[tuple[Any, ...]]:
        with db.connect(url) as conn:
            return conn.execute(
                "SELECT event_id, status, trace_id, published_at FROM answers WHERE published_at IS NOT NULL"
            ).fetchall()

    rows = wait_for(answered, timeout_s=600, what="a published answer", log=log)
    assert [(row[0], row[2]) for row in rows] == [("zendesk:T-9:created", TRACE_ID)]

    def dead_lettered() -> list[tuple[Any, ...]]:
        with db.connect(url) as conn:
            return conn.execute("SELECT stage, reason FROM dead_letters").fetchall()

    letters = wait_for(dead_lettered, timeout_s=120, what="the broken event's dead letter", log=log)
    assert letters[0][0] == "ticket" and "ticket_stored.v1.json" in letters[0][1]

    published = read_topic(bootstrap, "answer", until=lambda found: len(found) >= 1, timeout_s=60)
    time.sleep(3)  # the redelivered event must not publish a second answer
    published = read_topic(bootstrap, "answer", until=lambda found: False, timeout_s=8)
    assert len(published) == 1
    payload = json.loads(published[0].value())
    contracts.validate("answer.v1.json", payload)
    headers = {name: value.decode() for name, value in published[0].headers() or []}
    assert headers["traceparent"].split("-")[1] == TRACE_ID and headers["answer_id"] == payload["answer_id"]
    assert payload["event_id"] == "zendesk:T-9:created" and payload["customer_id"] == "fatima_anderson_2157"
    assert [step["source"] for step in payload["tool_trace"]][:2] == ["router", "router"]

    def relayed(found: list[Any]) -> bool:
        return any(json.loads(m.value())["action"] == "answer_published" for m in found)

    audit = read_topic(bootstrap, "audit", until=relayed, timeout_s=60)
    records = [json.loads(message.value()) for message in audit]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    actions = {r["action"] for r in records if r["ticket_id"] == "zendesk:T-9"}
    assert {"rbac_decision", "tool_call", "model_call", "answer_published"} <= actions
    assert {r["trace_id"] for r in records if r["ticket_id"] == "zendesk:T-9"} == {TRACE_ID}


@pytest.mark.slow
def test_the_worker_answers_a_50k_character_zendesk_ticket_with_the_cut_recorded(
    stack: tuple[str, str, Path],
) -> None:
    bootstrap, url, log = stack
    webhook = json.loads((FIXTURES / "zendesk" / "dust_zendesk_ticket_webhook_events.jsonl").read_text().split("\n")[0])
    head = f"Hi, where is my order {ORDER}? It has not arrived yet. "
    webhook["id"] = str(uuid.uuid4())
    webhook["detail"].update(
        id="50000", organization_id="fatima_anderson_2157", description=(head + "I keep waiting. " * 3200)[:50_000]
    )
    (event,) = ZendeskConnector().parse(RawMessage(topic="raw.zendesk", value=json.dumps(webhook).encode()))
    limit = get_settings().ingest.ticket_text_max_chars  # the canonical event holds the head of the text
    assert isinstance(event, TicketEvent) and len(event.body or "") == limit
    assert event.metadata["text_cut"] == {"body": {"original_chars": 50_000, "kept_chars": limit}}
    started = time.monotonic()
    with Publisher(bootstrap, client_id="tests") as publisher:
        publisher.publish(topics.STORED_TICKET, as_stored(event.to_json()), key=event.key)

    def answered() -> Answer | None:
        with db.connect(url) as conn:
            found = answers.answer_for_event(conn, event_id=event.event_id)
            return found if found is not None and answers.is_published(conn, answer_id=found.answer_id) else None

    answer = wait_for(answered, timeout_s=300, what="the long ticket's answer", log=log)
    seconds = time.monotonic() - started
    assert answer is not None
    contracts.validate("answer.v1.json", answer.to_event())
    cut = [step for step in answer.trace if step.tool == "(input budget)"]
    assert len(cut) == 1 and cut[0].arguments["original_chars"] == limit + len(event.subject or "")
    assert cut[0].arguments["original_tokens"] > 1024 >= cut[0].arguments["kept_tokens"]  # ticket_max_tokens
    with db.connect(url) as conn:
        records = audit.trail(conn, ticket_id="zendesk:50000")
    assert ("guardrail", "input_truncated") in {(r.action, r.decision) for r in records}
    prompts = [r.details["prompt_tokens"] for r in records if r.action == "model_call"]
    assert prompts and max(prompts) + 160 <= 8192  # STREAMDESK_ANSWER__MAX_NEW_TOKENS=160 in the worker
    assert answer.status in ("draft", "pending_approval") and seconds < 300


@pytest.mark.slow
def test_the_worker_answers_a_thread_a_held_change_then_the_customers_yes(stack: tuple[str, str, Path]) -> None:
    bootstrap, url, log = stack
    asked = (
        f"If order {ORDER} has not shipped yet, please ship it to 445 Maple Drive, Suite 394, Fort Worth, Texas 76165."
    )
    events = [
        TicketEvent(
            event_id=f"zendesk:T-10:{n}",
            source="zendesk",
            ticket_id="T-10",
            event_type=kind,
            version=[n],
            occurred_at=NOW,
            subject="Delivery address",
            body=body,
            requester=Requester(email=EMAIL),
        )
        for n, kind, body in ((1, "created", asked), (2, "comment_added", "Yes, go ahead."))
    ]
    with Publisher(bootstrap, client_id="tests") as publisher:
        for event in events:
            publisher.publish(topics.STORED_TICKET, as_stored(event.to_json()), key=event.key)

    def both() -> list[Answer] | None:
        with db.connect(url) as conn:
            found = answers.answers_for_ticket(conn, source="zendesk", ticket_id="T-10")
        return found if len(found) == 2 else None

    first, second = sorted(
        wait_for(both, timeout_s=600, what="both turns' answers", log=log) or [], key=lambda a: a.event_id
    )
    assert [s.outcome for s in first.trace if s.tool == "modify_pending_order_address"] == ["held"]
    assert [s.outcome for s in second.trace if s.tool == "modify_pending_order_address"] == ["executed"]
    assert "is being changed to ship to 445 Maple Drive" in second.text
    with db.connect(url) as conn:
        thread = conversations.thread(conn, source="zendesk", ticket_id="T-10")
    assert [(m["role"], m["decision"]) for m in thread] == [
        ("customer", None), ("agent", "held"), ("customer", None), ("agent", "confirmed")
    ]  # fmt: skip
