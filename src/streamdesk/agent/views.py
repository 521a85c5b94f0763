"""/answers/{id}: one answer with its citations and tool trace (the verdicts on it are `feedback.views`);
/tickets/{source}/{id}: one ticket with every answer the agent gave.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from streamdesk.agent import answers
from streamdesk.agent.answers import Answer
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


class TicketDetail(TicketSummary):
    """A ticket with its first message and every answer the agent gave, each with its tool trace."""

    body: str | None
    answers: list[Answer]


@tickets.get("/{source}/{ticket_id}")
def show_ticket(source: str, ticket_id: str, operator: PrincipalDep, conn: ConnDep) -> TicketDetail:
    """One ticket of the caller's tenant with its answers and their tool traces."""
    row = store.get_ticket(conn, source=source, ticket_id=ticket_id, tenant=operator.tenant)
    if row is None:
        raise HTTPException(404, f"no ticket {source}:{ticket_id} in tenant {operator.tenant!r}")
    found = answers.answers_for_ticket(conn, source=source, ticket_id=ticket_id)
    return TicketDetail(**row, answers=[a for a in found if a.tenant == operator.tenant])
