"""Per-answer budgets on the real SmolLM2 and the real database: the ticket cut to fit, a wall-clock limit.

The τ²-bench world is loaded into the test's transaction and rolled back afterwards.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from streamdesk.agent import answer_config, backends, budget, loop, prompts, tools
from streamdesk.agent.answers import Ticket
from streamdesk.agent.exceptions import AnswerTimeoutError
from streamdesk.agent.models import Message
from streamdesk.audit import service as audit
from streamdesk.identity.models import agent_for_customer

CUSTOMER = "fatima_anderson_2157"
ORDER = "#W2974929"
REGISTRY = tools.default_registry()
SETTINGS = answer_config.AnswerSettings(max_new_tokens=160, reply_max_chars=80, knowledge_k=2)
FILLER = "I have been waiting for a long time and I keep checking the tracking page every single day. "


def long_body(chars: int = 50_000) -> str:
    """A ticket body of `chars` characters that asks about one order first, then rambles."""
    head = f"Hi, where is my order {ORDER}? It has not arrived yet. "
    return (head + FILLER * (chars // len(FILLER) + 1))[:chars]


def ticket(body: str) -> Ticket:
    return Ticket(
        source="zendesk", ticket_id="T-1", event_id=f"zendesk:T-1:{uuid.uuid4().hex[:8]}", subject="Help", body=body
    )


def answer(
    conn: psycopg.Connection, backend: backends.LLMBackend, body: str, settings: answer_config.AnswerSettings
) -> loop.AnswerResult:
    return loop.answer_ticket(
        conn,
        ticket=ticket(body),
        principal=agent_for_customer(CUSTOMER),
        backend=backend,
        registry=REGISTRY,
        max_steps=1,
        settings=settings,
    )


def trail(conn: psycopg.Connection, action: str) -> list[Any]:
    return [record for record in audit.trail(conn, ticket_id="zendesk:T-1") if record.action == action]


def test_a_ticket_is_cut_on_token_boundaries_and_the_cut_measured(backend: backends.TransformersBackend) -> None:
    long = ticket(long_body())
    kept, cut = budget.cut_ticket(long, backend=backend, tokens=300, reason="test")
    assert cut is not None and kept.subject == "Help" and long.body.startswith(kept.body)
    assert cut.original_chars == 50_004 and cut.kept_chars == len(kept.body) + 4
    assert cut.kept_tokens <= 300 < cut.original_tokens and cut.limit_tokens == 300
    assert budget.cut_ticket(kept, backend=backend, tokens=300, reason="test") == (kept, None)
    assert backend.context_tokens == 8192
    generic = backends.OpenAICompatibleBackend(base_url="http://localhost:1/v1", model="m")
    assert generic.cut_text("héllo", tokens=2) == "h" and generic.text_tokens("héllo") == 6


@pytest.mark.slow
def test_a_generation_past_its_deadline_stops_within_a_pass_and_keeps_the_warm_prefix(
    backend: backends.TransformersBackend,
) -> None:
    system: Message = {"role": "system", "content": "You answer support tickets for an online store. " * 30}
    long = [system, prompts.ticket_message(subject="Help", body=long_body(20_000))]
    backend.prefix_cache.clear()
    backend.warm([system])
    started = time.monotonic()
    with pytest.raises(AnswerTimeoutError, match="STREAMDESK_ANSWER__ANSWER_TIMEOUT_S"):
        backend.generate(long, json_schema={"type": "object"}, max_new_tokens=16, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 30  # one 1,024-token pass at most, not the whole ~5,000-token prompt
    warm = backend.tokenizer.apply_chat_template([system], tokenize=False)
    _, cached = backend.prefix_cache.take(adapter=None, ids=backend.encode(long)["input_ids"][0].tolist())
    assert cached == backend.text_tokens(warm)  # the system prompt's cache came back: the next ticket starts warm
    backend.prefix_cache.clear()


@pytest.mark.slow
def test_a_50k_character_ticket_is_answered_within_the_budget_and_the_cut_recorded(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    started = time.monotonic()
    result = answer(world, backend, long_body(), SETTINGS)
    seconds = time.monotonic() - started
    cut = [step for step in result.answer.trace if step.tool == loop.INPUT_BUDGET_STEP]
    assert len(cut) == 1 and cut[0].source == "guardrail" and cut[0].outcome == "truncated"
    assert cut[0].arguments["original_chars"] == 50_004 and cut[0].arguments["original_tokens"] > 8192
    assert cut[0].arguments["kept_tokens"] <= SETTINGS.ticket_max_tokens
    records = [r for r in trail(world, "guardrail") if r.decision == "input_truncated"]
    assert len(records) == 1 and records[0].details["kept_chars"] == cut[0].arguments["kept_chars"]
    assert result.generations and all(
        g.prompt_tokens + SETTINGS.max_new_tokens <= backend.context_tokens for g in result.generations
    )
    assert result.answer.status == "draft"  # the model did not read the whole ticket: a person reviews it
    assert seconds < SETTINGS.answer_timeout_s, f"the cut ticket took {seconds:.0f}s"


@pytest.mark.slow
def test_an_answer_past_its_wall_clock_budget_escalates_and_the_next_is_answered(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    short = f"Hi, where is my order {ORDER}? It has not arrived yet."
    assert answer(world, backend, short, SETTINGS).answer.status != "escalated"  # look-ups and search warm now
    unbounded = SETTINGS.model_copy(update={"ticket_max_tokens": 1_000_000, "answer_timeout_s": 15.0})
    started = time.monotonic()
    slow = answer(world, backend, long_body(), unbounded)
    assert time.monotonic() - started < 60
    fitted = [step for step in slow.answer.trace if step.tool == loop.INPUT_BUDGET_STEP]
    assert fitted and "context of 8192 tokens" in str(fitted[-1].reason)
    assert fitted[-1].arguments["kept_tokens"] < backend.context_tokens - SETTINGS.max_new_tokens
    assert slow.answer.status == "escalated" and "member of our team" in slow.answer.text
    stopped = [step for step in slow.answer.trace if step.tool == loop.ANSWER_BUDGET_STEP]
    assert stopped and stopped[0].arguments["budget"] == "wall_clock" and stopped[0].arguments["limit_s"] == 15.0
    assert len(trail(world, "model_call")) == 1  # the first ticket's: the slow one stopped inside its generation
    escalations = trail(world, "escalation")
    assert escalations and "wall_clock budget" in str(escalations[-1].reason)

    after = answer(world, backend, short, SETTINGS)
    assert after.answer.status != "escalated" and after.model_steps
