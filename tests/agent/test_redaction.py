"""PII in a ticket reaches the tools but never the audit trail, the stored answer trace or the exported spans.

The calls take the real path (`execution.run_call`: policy, tool, audit) on the τ²-bench world and the
answer is stored as the worker stores it; the slow test runs the whole loop on the real SmolLM2.
"""

from __future__ import annotations

import io

import psycopg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamdesk import telemetry
from streamdesk.agent import answer_config, answers, backends, execution, loop, tools
from streamdesk.agent.answers import Answer, Ticket
from streamdesk.agent.models import ToolCall
from streamdesk.audit import service as audit
from streamdesk.identity.models import agent_for_customer

CUSTOMER = "fatima_anderson_2157"
EMAIL = "fatima.anderson1447@example.com"
CARD = "4111 1111 1111 1111"
BODY = f"I was charged twice on my card {CARD}. My email is {EMAIL}; please pass me to a person."
LEAKS = ("4111 1111", "4111111111111111", "1111 1111", "fatima.anderson1447")
"""The card in any spacing and the email; `4111` alone is no leak (order ids such as #W4111294 contain it)."""


def leaks(text: str) -> list[str]:
    return [digits for digits in LEAKS if digits in text]


def test_a_card_number_in_a_ticket_is_never_stored_or_exported(world: psycopg.Connection) -> None:
    spans = InMemorySpanExporter()
    telemetry.add_exporter(spans)
    ticket = Ticket(source="zendesk", ticket_id="T-77", event_id="zendesk:T-77:1", subject="Refund", body=BODY)
    scope = execution.CallScope(
        conn=world, principal=agent_for_customer(CUSTOMER), registry=tools.default_registry(), ticket=ticket
    )
    calls = [
        ToolCall(tool="find_user_id_by_email", arguments={"email": EMAIL}),
        ToolCall(tool="transfer_to_human_agents", arguments={"summary": f"double charge on card {CARD}"}),
    ]
    outcomes = [execution.run_call(scope, call=call, source="router", index=i) for i, call in enumerate(calls)]
    assert [o.step.outcome for o in outcomes] == ["ok", "executed"]
    assert outcomes[0].result == {"user_id": CUSTOMER}, "the tool got the real email"

    answer = Answer(
        event_id=ticket.event_id,
        source="zendesk",
        ticket_id="T-77",
        status="escalated",
        text="A person will take over.",
        trace=[o.step for o in outcomes],
        model="test-model",
        prompt_version="p1",
    )
    stored, _ = answers.store_answer(world, answer=answer)
    assert stored.trace[1].arguments == {"summary": "double charge on card [CARD]"}
    assert stored.trace[0].arguments == {"email": "[EMAIL]"}
    (trace_json,) = world.execute("SELECT trace::text FROM answers WHERE event_id = %s", (ticket.event_id,)).fetchone()
    assert not leaks(trace_json) and not leaks(str(stored.to_event()))

    (contents,) = world.execute("SELECT string_agg(content, '\n' ORDER BY seq) FROM audit_records").fetchone()
    assert "[CARD]" in contents and "[EMAIL]" in contents and not leaks(contents)
    out = io.StringIO()
    audit.export(world, out=out)
    assert not leaks(out.getvalue()) and audit.verify(world).ok
    exported = [str(span.to_json()) for span in spans.get_finished_spans()]
    assert any("execute_tool transfer_to_human_agents" in span for span in exported)
    assert not leaks("".join(exported))


def stored_text(conn: psycopg.Connection, *, ticket_ref: str) -> str:
    """Everything stored about a ticket in the audit trail and the answers, and the trail's export, as text."""
    (contents,) = conn.execute(
        "SELECT coalesce(string_agg(content, '\n' ORDER BY seq), '') FROM audit_records WHERE ticket_id = %s",
        (ticket_ref,),
    ).fetchone()
    (traces,) = conn.execute("SELECT coalesce(string_agg(trace::text, '\n'), '') FROM answers").fetchone()
    out = io.StringIO()
    audit.export(conn, out=out, ticket_id=ticket_ref)
    return "\n".join((contents, traces, out.getvalue()))


@pytest.mark.slow
def test_the_loop_searches_with_the_card_number_but_never_stores_it(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    ticket = Ticket(source="zendesk", ticket_id="T-78", event_id="zendesk:T-78:1", subject="Charged twice", body=BODY)
    result = loop.answer_ticket(
        world,
        ticket=ticket,
        principal=agent_for_customer(CUSTOMER),
        backend=backend,
        registry=tools.default_registry(),
        max_steps=1,
        settings=answer_config.AnswerSettings(max_new_tokens=160, reply_max_chars=80, knowledge_k=2),
    )
    searched = [step for step in result.answer.trace if step.tool == "search_knowledge"]
    assert searched and CARD in searched[0].arguments["query"], "the search got the real text"
    answers.store_answer(world, answer=result.answer)
    stored = stored_text(world, ticket_ref=ticket.ref)
    assert "search_knowledge" in stored and "[CARD]" in stored and not leaks(stored)
