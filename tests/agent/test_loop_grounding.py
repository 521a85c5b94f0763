"""Grounded replies through the real loop, database and SmolLM2: quoted knowledge, declines, citations, the gate.

Every ticket here is answered by `loop.answer_ticket` with the τ²-bench world and knowledge documents
stored through the real knowledge store (rolled back after each test).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streamdesk.agent import answer_config, backends, grounding, loop, reply_gate, tools
from streamdesk.agent.answers import Ticket, TraceStep
from streamdesk.agent.models import Reply
from streamdesk.audit import service as audit
from streamdesk.config import get_settings, reset_settings
from streamdesk.contracts import Access
from streamdesk.identity.models import agent_for_customer
from streamdesk.knowledge import embedders
from streamdesk.knowledge import store as knowledge_store
from tests.knowledge.factories import document_event


def compose_text(**parts: Any) -> str:
    """The reply text the loop sends for `loop.compose_parts(**parts)`."""
    return grounding.paragraphs(loop.compose_parts(**parts))


CUSTOMER = "fatima_anderson_2157"
EMAIL = "fatima.anderson1447@example.com"
REGISTRY = tools.default_registry()
SETTINGS = answer_config.AnswerSettings(max_new_tokens=160, reply_max_chars=80, knowledge_k=2)
GIFT_WRAPPING = (
    "We offer gift wrapping for every order placed on the web site. Gift wrapping costs five dollars per item. "
    "Choose it at checkout, before you pay."
)
MARGINS = "Gift wrapping costs the store one dollar per item, so every wrapped item earns four dollars."
HOURS = "Our stores open at nine in the morning. They close at six in the evening on weekdays."


@pytest.fixture
def gate_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state folder of the test's own, so no gate result of a real run counts."""
    monkeypatch.setenv("STREAMDESK_STATE_DIR", str(tmp_path))
    reset_settings()
    yield tmp_path
    monkeypatch.undo()
    reset_settings()


def store(conn: psycopg.Connection, *documents: tuple[str, str, str, str]) -> None:
    """Store `(id, title, body, access level)` documents through the knowledge store."""
    settings = get_settings().ingest
    knowledge_store.apply_documents(
        conn,
        [
            document_event(name, title=title, body=body, access=Access(level=level))  # type: ignore[arg-type]
            for name, title, body, level in documents
        ],
        embedder=embedders.get_embedder(),
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
    )


def answer(
    conn: psycopg.Connection, backend: backends.TransformersBackend, body: str, **settings: object
) -> loop.AnswerResult:
    return loop.answer_ticket(
        conn,
        ticket=Ticket(source="zendesk", ticket_id="T-1", event_id=f"zendesk:T-1:{uuid.uuid4().hex[:8]}", body=body),
        principal=agent_for_customer(CUSTOMER),
        backend=backend,
        registry=REGISTRY,
        max_steps=1,
        settings=SETTINGS.model_copy(update=settings),
    )


def knowledge_step(result: loop.AnswerResult) -> TraceStep:
    return next(step for step in result.answer.trace if step.tool == loop.KNOWLEDGE_STEP)


@pytest.mark.slow
def test_a_question_the_knowledge_does_not_answer_is_declined_and_handed_off(
    world: psycopg.Connection, backend: backends.TransformersBackend, gate_dir: Path
) -> None:
    store(world, ("hours", "Opening hours", HOURS, "public"))
    result = answer(world, backend, "What is the warranty on a lawn mower engine?")
    assert result.answer.status == "escalated" and grounding.DECLINE in result.answer.text
    assert result.answer.citations == [] and knowledge_step(result).decision == "declined"
    assert [(s.tool, s.outcome) for s in result.answer.trace if s.tool == "escalate"] == [("escalate", "executed")]
    escalations = [r for r in audit.trail(world, ticket_id="zendesk:T-1") if r.action == "escalation"]
    assert escalations and "does not answer" in (escalations[0].reason or "")
    assert result.generations == []  # the model's words could not be used: no model step was taken


@pytest.mark.slow
def test_an_auto_reply_quotes_public_knowledge_and_holds_only_grounded_sentences(
    world: psycopg.Connection, backend: backends.TransformersBackend, gate_dir: Path
) -> None:
    store(
        world, ("gift-wrapping", "Gift wrapping", GIFT_WRAPPING, "public"), ("hours", "Opening hours", HOURS, "public")
    )
    result = answer(world, backend, "How much does gift wrapping cost?")
    assert result.answer.status == "auto_reply" and result.answer.citations == ["kb:gift-wrapping#0"]
    assert "Gift wrapping costs five dollars per item." in result.answer.text
    passage = grounding.Passage(chunk_id="kb:gift-wrapping#0", title="Gift wrapping", text=GIFT_WRAPPING)
    assert grounding.paragraphs(result.parts) == result.answer.text
    assert all(ok for _, ok in grounding.sentence_grounding(result.parts, passages=[passage])), result.answer.text
    assert [p.chunk_id for p in result.parts if p.origin == "knowledge"] == ["kb:gift-wrapping#0"] * 3
    assert all(p.text in GIFT_WRAPPING for p in result.parts if p.origin == "knowledge")
    assert not [p for p in result.parts if p.origin == "model"]
    assert result.generations == []


@pytest.mark.slow
def test_no_customer_facing_reply_cites_a_non_public_document(
    world: psycopg.Connection, backend: backends.TransformersBackend, gate_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMDESK_RETRIEVAL__CUSTOMER_AGENT_READS_INTERNAL", "true")
    reset_settings()
    store(
        world,
        ("margins", "Internal: gift wrapping cost and margins", MARGINS, "internal"),
        ("gift-wrapping", "Gift wrapping", GIFT_WRAPPING, "public"),
    )
    result = answer(world, backend, "How much does gift wrapping cost per item?")
    searched = [
        r
        for r in audit.trail(world, ticket_id="zendesk:T-1")
        if r.action == "tool_call" and r.tool_name == "search_knowledge"
    ]
    assert "kb:margins#0" in searched[0].chunk_ids  # the agent read it (the reviewer sees it in the trace) ...
    assert "kb:margins#0" not in result.answer.citations and MARGINS not in result.answer.text  # ... never cited
    assert "one dollar" not in result.answer.text
    assert set(result.answer.citations) <= {"kb:gift-wrapping#0"}


@pytest.mark.slow
def test_the_gate_keeps_the_base_models_words_out_of_the_reply(
    world: psycopg.Connection, backend: backends.TransformersBackend, gate_dir: Path
) -> None:
    body = f"Where is my order #W2974929? My email is {EMAIL}"
    gated = answer(world, backend, body)
    replies = [json.loads(g.text) for g in gated.generations if '"reply"' in g.text]
    assert replies, "the model took its reply step (the ticket has an intent)"
    message = replies[-1]["arguments"]["message"].strip()
    assert message and message not in gated.answer.text
    assert not reply_gate.allows_model_text(model=backend.model_name, adapter=None, policy="gated")

    reply_gate.record(
        reply_gate.GateResult(
            model=backend.model_name, adapter=None, rouge_l=0.5, grounded_sentence_rate=1.0, queries=10, dataset="t"
        )
    )
    passed = answer(world, backend, body)
    assert passed.answer.text.startswith(message)
    assert message not in answer(world, backend, body, model_text="never").answer.text


def test_an_ungrounded_reply_never_goes_out_on_its_own() -> None:
    trace = [TraceStep(index=0, source="router", tool="search_knowledge", outcome="ok")]
    reply = Reply(message="hi", citations=["kb:a#0"])
    status = functools.partial(
        loop.decide_status, trace=trace, reply=reply, injection=False, wants_write=False, settings=SETTINGS
    )
    assert status() == "auto_reply"
    assert status(grounded=False) == "draft"
    assert status(citations=0) == "draft"
    assert status(escalated=True) == "escalated"


def test_the_reply_quotes_knowledge_or_declines_with_the_hand_off() -> None:
    quoted = grounding.KnowledgeAnswer(
        parts=[grounding.Part("Gift wrapping costs five dollars per item.", "knowledge", "kb:g#0")],
        answerable=True,
        probability=0.9,
    )
    text = compose_text(reply=Reply(message=""), trace=[], escalated=False, knowledge=quoted, model_text=False)
    assert text == f"{loop.KNOWLEDGE_LEAD}\n\nGift wrapping costs five dollars per item."
    declined = grounding.KnowledgeAnswer(
        parts=[grounding.Part(grounding.DECLINE, "template")], answerable=False, probability=0.1
    )
    text = compose_text(reply=Reply(message=""), trace=[], escalated=True, knowledge=declined, model_text=False)
    assert text == grounding.DECLINE
    words = compose_text(reply=Reply(message="Sure thing."), trace=[], escalated=False, model_text=False)
    assert "Sure thing" not in words and words == loop.FALLBACK_REPLY
