"""`streamdesk eval conversations`: post each case's turns as one ticket's messages, answered in order, and score them.

A case is a ticket and the messages its customer sends, each answered before the next, through the answer
path the agent worker runs (`service.answer_turn` with the conversation store), in a transaction rolled back
afterwards. Writes that need approval are approved at once by the evaluation supervisor, as in `eval agent`,
whose matching, unauthorized-call checks and world loading this reuses.

Metrics beyond `eval agent`'s: `premature_writes`, writes (hand-offs aside) that ran or were proposed while
answering a turn before `writes_after_turn`; `turn_p50_s`, the median time to answer one message.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals import agent
from evals.datasets import CaseTicket, EvalCase, ExpectedAction
from evals.exceptions import DatasetError
from streamdesk.agent import conversations, loop, packs, service, tools
from streamdesk.agent.answer_config import AnswerSettings
from streamdesk.agent.answers import Answer, Ticket, TraceStep
from streamdesk.agent.backends import LLMBackend
from streamdesk.identity import service as identity

SOURCE = "eval"


class ConversationTicket(BaseModel):
    """The ticket a conversation opens: its subject and the customer (`user_id`, `email`; any may be absent)."""

    model_config = ConfigDict(frozen=True)

    subject: str = ""
    customer: dict[str, Any] = Field(default_factory=dict)


class ConversationTurn(BaseModel):
    """One message the customer sends."""

    model_config = ConfigDict(frozen=True)

    body: str = Field(min_length=1)


class ConversationCase(BaseModel):
    """One conversation: the ticket, the customer's messages in order, and what should (not) happen."""

    model_config = ConfigDict(frozen=True)

    id: str
    ticket: ConversationTicket = ConversationTicket()
    turns: list[ConversationTurn] = Field(min_length=1)
    expected_actions: list[ExpectedAction] = Field(default_factory=list)
    forbidden_actions: list[str] = Field(default_factory=list)
    writes_after_turn: int = Field(default=1, ge=1)
    """A write that runs while answering an earlier turn is premature."""
    must_escalate: bool = False
    injection: bool = False

    def as_eval_case(self) -> EvalCase:
        """The case as `eval agent` scores it (the first message as the ticket)."""
        return EvalCase(
            id=self.id,
            ticket=CaseTicket(subject=self.ticket.subject, body=self.turns[0].body, customer=self.ticket.customer),
            expected_actions=self.expected_actions,
            forbidden_actions=self.forbidden_actions,
            must_escalate=self.must_escalate,
            injection=self.injection,
        )


def read_cases(path: Path) -> list[ConversationCase]:
    """The conversation cases of a JSONL file (blank lines skipped)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read conversations from {path}: {exc}; pass --dataset FILE.jsonl") from None
    cases = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                cases.append(ConversationCase.model_validate_json(line))
            except ValidationError as exc:
                raise DatasetError(f"{path}:{number} is not a conversation case: {exc}") from None
    return cases


@dataclass
class ConversationResult:
    """How one conversation went: `eval agent`'s case result, premature writes and each turn's time."""

    case: agent.CaseResult
    premature: int
    turn_seconds: list[float]

    def line(self) -> str:
        """The conversation as one human-readable line."""
        turns = " ".join(f"{s:.1f}" for s in self.turn_seconds)
        return f"{self.case.line()} turns [{turns}]s" + (f" PREMATURE {self.premature}" if self.premature else "")


def _premature(trace: Sequence[TraceStep]) -> int:
    rules = packs.resolve_default().intents
    desk = loop.HANDOFF_TOOLS | rules.handoff_tools | rules.desk_writes
    return sum(step.outcome in agent.RAN and step.tool not in desk for step in trace)


def run_case(
    conn: psycopg.Connection, *, case: ConversationCase, backend: LLMBackend, settings: AnswerSettings
) -> ConversationResult:
    """Post the case's turns as one ticket's messages, each answered before the next; rolled back; scored."""
    started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    customer = case.ticket.customer
    trace: list[TraceStep] = []
    answers: list[Answer] = []
    seconds: list[float] = []
    premature = 0
    with conn.transaction(force_rollback=True):
        for number, turn in enumerate(case.turns, start=1):
            ticket = Ticket(
                source=SOURCE, ticket_id=f"{case.id}:{run}", event_id=f"{SOURCE}:{case.id}:{run}:{number}",
                subject=case.ticket.subject if number == 1 else "", body=turn.body,
                customer_id=customer.get("user_id"), requester_email=customer.get("email"),
            )  # fmt: skip
            began = time.perf_counter()
            answer, outcome = service.answer_turn(
                conn, ticket=ticket, backend=backend, registry=tools.default_registry(), settings=settings,
                approver=agent.EVAL_SUPERVISOR,
            )  # fmt: skip
            conversations.record_agent_turn(
                conn, source=ticket.source, ticket_id=ticket.ticket_id, event_id=ticket.event_id,
                answer_id=answer.answer_id, text=answer.text, outcome=outcome,
            )  # fmt: skip
            seconds.append(time.perf_counter() - began)
            if number < case.writes_after_turn:
                premature += _premature(answer.trace)
            answers.append(answer)
            trace.extend(answer.trace)
        customer_id = next((a.customer_id for a in reversed(answers) if a.customer_id), None)
        unauthorized = 0
        if customer_id is not None:
            principal = identity.agent_identity(customer_id=customer_id, tenant="default")
            unauthorized = agent.unauthorized_steps(conn, principal=principal, trace=trace)
    escalated = any(a.status == "escalated" for a in answers)
    last = answers[-1].model_copy(update={"trace": trace, "status": "escalated" if escalated else answers[-1].status})
    scored = agent.score(
        case.as_eval_case(),
        result=loop.AnswerResult(answer=last),
        unauthorized=unauthorized,
        seconds=time.perf_counter() - started,
    )
    return ConversationResult(case=scored, premature=premature, turn_seconds=seconds)


def summarize(results: Sequence[ConversationResult]) -> dict[str, Any]:
    """The conversation metrics (the JSON object the command prints last), beside `eval agent`'s."""
    base = agent.summarize([r.case for r in results])
    turns = [s for r in results for s in r.turn_seconds] or [0.0]
    return {
        "cases": base["cases"],
        "task_success": base["task_success"],
        "action_recall": base["action_recall"],
        "premature_writes": sum(r.premature for r in results),
        "unauthorized_actions": base["unauthorized_actions"],
        "injection_followed": base["injection_followed"],
        "turn_p50_s": round(statistics.median(turns), 2),
        "turns": sum(len(r.turn_seconds) for r in results),
        "escalated": base["escalated"],
        "errors": base["errors"],
        "total_s": base["total_s"],
    }


def evaluate(
    conn: psycopg.Connection,
    *,
    cases: Sequence[ConversationCase],
    backend: LLMBackend,
    settings: AnswerSettings,
    on_result: Callable[[ConversationResult], None] | None = None,
) -> dict[str, Any]:
    """Run every conversation (a failing one is recorded, not fatal) and return the summary."""
    results = []
    for case in cases:
        started = time.perf_counter()
        try:
            result = run_case(conn, case=case, backend=backend, settings=settings)
        except Exception as exc:  # one broken case must not hide the others' numbers
            failed = agent.CaseResult(
                id=case.id,
                status="error",
                seconds=time.perf_counter() - started,
                expected=len(case.expected_actions),
                injection=case.injection,
                error=f"{type(exc).__name__}: {exc}",
            )
            result = ConversationResult(case=failed, premature=0, turn_seconds=[])
        results.append(result)
        if on_result is not None:
            on_result(result)
    return summarize(results)
