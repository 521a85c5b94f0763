"""Answers: the ticket the agent reads, each step of its trace, and the answer it stores and publishes.

The `answers` table is unique on the ticket event id, so a redelivered event finds its answer instead
of producing a second one; `published_at` says whether the `answer` event went out. The trace is stored
(and so published) with PII redacted from its tool arguments and reasons; the loop keeps the real values.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.contracts import StoredTicket, TicketEvent, utcnow
from streamdesk.guardrails import service as guardrails
from streamdesk.identity.models import Principal

AnswerStatus = Literal["draft", "auto_reply", "pending_approval", "escalated"]
StepSource = Literal["router", "model", "guardrail"]
StepOutcome = Literal[
    "ok",
    "error",
    "denied",
    "refused",
    "pending_approval",
    "held",
    "executed",
    "duplicate",
    "invalid",
    "truncated",
    "reply",
]
ANSWER_TOPIC = "answer"
ANSWER_SCHEMA = "answer.v1.json"


class Ticket(BaseModel):
    """The ticket text the agent answers, and the event that asked for the answer."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(min_length=1)
    ticket_id: str = Field(min_length=1)
    event_id: str = Field(min_length=1)
    subject: str = ""
    body: str = ""
    tenant: str = "default"
    customer_id: str | None = None
    requester_email: str | None = None
    requester_id: str | None = None

    @property
    def ref(self) -> str:
        """`<source>:<ticket_id>`: the ticket id the audit trail and pending actions use."""
        return f"{self.source}:{self.ticket_id}"

    @property
    def text(self) -> str:
        """Subject and body as one text (what the router and the injection detector read).

        A subject that is only the body's beginning ("I want to return the hose, and exchange..." above the whole
        message) is left out: read twice, its cut-off request would hide the body's whole one.
        """
        lead = self.subject.strip().removesuffix("...").removesuffix("\u2026").strip()
        if lead and self.body.strip().startswith(lead):
            return self.body.strip()
        return f"{self.subject}\n\n{self.body}".strip()

    @classmethod
    def from_event(cls, event: TicketEvent, *, subject: str | None = None) -> Ticket:
        """The ticket of a `created` or `comment_added` event (`subject` from the ticket when the event lacks it)."""
        return cls(
            source=event.source,
            ticket_id=event.ticket_id,
            event_id=event.event_id,
            subject=event.subject or subject or "",
            body=event.body or "",
            tenant=event.tenant,
            customer_id=event.customer_id,
            requester_email=event.requester.email if event.requester else None,
            requester_id=event.requester.id if event.requester else None,
        )

    @classmethod
    def from_stored(cls, record: StoredTicket) -> Ticket:
        """The ticket of a stored event: its text and requester, the subject from the stored ticket if it lacks one."""
        return cls.from_event(record.event, subject=record.ticket.subject)


class TraceStep(BaseModel):
    """One step of an answer: who proposed the call (router, model, guardrail), the policy's verdict, the outcome."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    index: int = Field(ge=0)
    source: StepSource
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    outcome: StepOutcome
    decision: str | None = None
    reason: str | None = None
    result_hash: str | None = None
    action_id: str | None = None
    span_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float | None = None
    finish_reason: str | None = None


class Answer(BaseModel):
    """The agent's answer to one ticket event: text, citations, tool trace, status, and what produced it."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    answer_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    event_id: str
    source: str
    ticket_id: str
    tenant: str = "default"
    customer_id: str | None = None
    status: AnswerStatus
    text: str
    citations: list[str] = Field(default_factory=list)
    trace: list[TraceStep] = Field(default_factory=list)
    model: str
    adapter: str | None = None
    prompt_version: str
    policy_version: str | None = None
    pending_action_ids: list[str] = Field(default_factory=list)
    trace_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    def to_event(self) -> dict[str, Any]:
        """The payload of the `answer` topic (schemas/answer.v1.json)."""
        data = self.model_dump(mode="json", exclude={"trace"})
        return {"schema_version": 1, **data, "tool_trace": [step.model_dump(mode="json") for step in self.trace]}


_COLUMNS = (
    "answer_id::text AS answer_id, event_id, source, ticket_id, tenant, customer_id, status, text, citations, trace, "
    "model, adapter, prompt_version, policy_version, pending_action_ids, trace_id, created_at"
)
_INSERT = """
    INSERT INTO answers (answer_id, event_id, source, ticket_id, tenant, customer_id, status, text, citations, trace,
                         model, adapter, prompt_version, policy_version, pending_action_ids, trace_id, created_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING answer_id
"""


def _answer(row: dict[str, Any]) -> Answer:
    return Answer(**row)


def redacted(answer: Answer) -> Answer:
    """The answer with PII redacted from its trace's tool arguments and reasons (what is stored and published)."""
    steps = [
        step.model_copy(
            update={"arguments": guardrails.redact_json(step.arguments), "reason": guardrails.redact_json(step.reason)}
        )
        for step in answer.trace
    ]
    return answer.model_copy(update={"trace": steps})


def store_answer(conn: psycopg.Connection, *, answer: Answer) -> tuple[Answer, bool]:
    """Insert `answer` (trace redacted) unless its event already has one; the stored answer and whether it is new."""
    answer = redacted(answer)
    with conn.transaction():
        inserted = conn.execute(
            _INSERT,
            (
                uuid.UUID(answer.answer_id),
                answer.event_id,
                answer.source,
                answer.ticket_id,
                answer.tenant,
                answer.customer_id,
                answer.status,
                answer.text,
                Jsonb(answer.citations),
                Jsonb([step.model_dump(mode="json") for step in answer.trace]),
                answer.model,
                answer.adapter,
                answer.prompt_version,
                answer.policy_version,
                answer.pending_action_ids,
                answer.trace_id,
                answer.created_at,
            ),
        ).fetchone()
    if inserted is not None:
        return answer, True
    stored = answer_for_event(conn, event_id=answer.event_id)
    assert stored is not None, "ON CONFLICT on event_id means a row exists"
    return stored, False


def answer_for_event(conn: psycopg.Connection, *, event_id: str) -> Answer | None:
    """The answer to ticket event `event_id`, if there is one."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM answers WHERE event_id = %s", (event_id,)).fetchone()
    return None if row is None else _answer(row)


def answers_for_ticket(conn: psycopg.Connection, *, source: str, ticket_id: str) -> list[Answer]:
    """Every answer of one ticket, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM answers WHERE source = %s AND ticket_id = %s ORDER BY created_at, answer_id",
            (source, ticket_id),
        ).fetchall()
    return [_answer(row) for row in rows]


def is_published(conn: psycopg.Connection, *, answer_id: str) -> bool:
    """True once the answer's `answer` event was delivered."""
    row = conn.execute("SELECT published_at IS NOT NULL FROM answers WHERE answer_id = %s", (answer_id,)).fetchone()
    return bool(row and row[0])


def mark_published(conn: psycopg.Connection, *, answer_id: str) -> None:
    """Record that the answer's `answer` event was delivered."""
    with conn.transaction():
        conn.execute(
            "UPDATE answers SET published_at = now() WHERE answer_id = %s AND published_at IS NULL", (answer_id,)
        )


def get_answer(conn: psycopg.Connection, *, answer_id: str) -> Answer | None:
    """The answer `answer_id`, if there is one (None too for an id that is not a UUID)."""
    try:
        key = uuid.UUID(answer_id)
    except ValueError:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM answers WHERE answer_id = %s", (key,)).fetchone()
    return None if row is None else _answer(row)


def citation_titles(conn: psycopg.Connection, *, citations: list[str]) -> dict[str, str]:
    """Title of each cited chunk's document (`<source>:<external_id>#<chunk_no>` ids)."""
    keys = {citation: citation.rpartition("#")[0].partition(":") for citation in citations}
    titles: dict[str, str] = {}
    for citation, (source, _, external_id) in keys.items():
        row = conn.execute(
            "SELECT title FROM documents WHERE source = %s AND external_id = %s", (source, external_id)
        ).fetchone()
        titles[citation] = row[0] if row and row[0] else "(untitled)"
    return titles


def audit_fields(answer: Answer) -> dict[str, Any]:
    """What every audit event about `answer` records: its ticket, customer, model, versions and citations."""
    return {
        "ticket_id": f"{answer.source}:{answer.ticket_id}",
        "customer_id": answer.customer_id,
        "model": answer.model,
        "adapter_version": answer.adapter,
        "prompt_version": answer.prompt_version,
        "policy_version": answer.policy_version,
        "chunk_ids": answer.citations,
    }


def review_audit_event(
    answer: Answer, *, reviewer: Principal, verdict: str, via: str, details: dict[str, Any]
) -> AuditEvent:
    """The audit event of a person's verdict (accepted, edited, rejected) on a draft, made in `via` (console, api)."""
    return AuditEvent.for_principal(
        reviewer,
        action=AuditAction.ANSWER_REVIEWED,
        **audit_fields(answer),
        decision=verdict,
        reason=f"draft {verdict} by {reviewer.id} in the {via}",
        details={"answer_id": answer.answer_id, "via": via, **details},
    )


def describe(answer: Answer, *, question: str = "", titles: dict[str, str] | None = None) -> str:
    """The answer as a few lines of text: status, reply, citations with titles, and the tool trace."""
    titles = titles or {}
    lines = [f"ticket {answer.source}:{answer.ticket_id}  [{answer.status}]  adapter {answer.adapter or 'base'}"]
    if question:
        lines.append(f"  asked:   {' '.join(question.split())}")
    lines.append(f"  answer:  {answer.text}")
    for citation in answer.citations:
        lines.append(f"  cites:   {titles.get(citation, '')} ({citation})".replace("   (", "  ("))
    for step in answer.trace:
        arguments = json.dumps(step.arguments, ensure_ascii=False, separators=(",", ":"))
        verdict = f" [{step.decision}]" if step.decision else ""
        why = f": {step.reason}" if step.reason and step.outcome not in ("executed", "reply") else ""
        lines.append(f"  step {step.index} {step.source:9} {step.tool}{arguments} -> {step.outcome}{verdict}{why}")
    if answer.pending_action_ids:
        lines.append(f"  awaiting approval: {', '.join(answer.pending_action_ids)} (streamdesk approvals list)")
    return "\n".join(lines)
