"""/answers/{id}: one answer with its citations and tool trace (the verdicts on it are `feedback.views`);
/tickets/{source}/{id}: one ticket with every answer the agent gave and its thread, turn by turn.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from streamdesk.agent import answers, conversations
from streamdesk.agent.answers import Answer, TraceStep
from streamdesk.entities import store
from streamdesk.entities.views import TicketSummary
from streamdesk.identity.models import Principal
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep

router = APIRouter(tags=["answers"], dependencies=[Gate])
tickets = APIRouter(tags=["tickets"], dependencies=[Gate])
"""Mounted at `/tickets` beside `entities.views.router`."""


def answer_for(conn: ConnDep, answer_id: str, operator: Principal) -> Answer:
    """The answer `answer_id` if it is in the operator's tenant, else 404."""
    found = answers.get_answer(conn, answer_id=answer_id)
    if found is None or found.tenant != operator.tenant:
        raise HTTPException(404, f"no answer {answer_id!r} in tenant {operator.tenant!r}")
    return found


@router.get("/{answer_id}")
def show_answer(answer_id: str, operator: PrincipalDep, conn: ConnDep) -> Answer:
    """One answer with its citations and tool trace."""
    return answer_for(conn, answer_id, operator)


class ThreadMessage(BaseModel):
    """One message of a ticket's thread: the customer's, or the agent's answer with its steps and decision."""

    role: str
    text: str
    event_id: str
    answer_id: str | None = None
    decision: str | None = None
    status: str | None = None
    steps: list[TraceStep] = Field(default_factory=list)
    created_at: datetime


class TicketDetail(TicketSummary):
    """A ticket with its first message, every answer the agent gave, and the conversation turn by turn."""

    body: str | None
    answers: list[Answer]
    conversation: list[ThreadMessage] = Field(default_factory=list)


def thread_of(conn: psycopg.Connection, *, source: str, ticket_id: str, answered: list[Answer]) -> list[ThreadMessage]:
    """The ticket's messages in order, each agent message with its answer's status and steps."""
    by_id = {answer.answer_id: answer for answer in answered}
    messages = []
    for row in conversations.thread(conn, source=source, ticket_id=ticket_id):
        answer = by_id.get(row["answer_id"] or "")
        if row["role"] == "agent" and answer is None:
            continue  # an answer of another tenant
        extra = {"status": answer.status, "steps": answer.trace} if answer is not None else {}
        messages.append(ThreadMessage(**row, **extra))
    return messages


@tickets.get("/{source}/{ticket_id}")
def show_ticket(source: str, ticket_id: str, operator: PrincipalDep, conn: ConnDep) -> TicketDetail:
    """One ticket of the caller's tenant with its answers and their tool traces."""
    row = store.get_ticket(conn, source=source, ticket_id=ticket_id, tenant=operator.tenant)
    if row is None:
        raise HTTPException(404, f"no ticket {source}:{ticket_id} in tenant {operator.tenant!r}")
    found = [
        a for a in answers.answers_for_ticket(conn, source=source, ticket_id=ticket_id) if a.tenant == operator.tenant
    ]
    thread = thread_of(conn, source=source, ticket_id=ticket_id, answered=found)
    return TicketDetail(**row, answers=found, conversation=thread)
