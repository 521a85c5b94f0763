"""/answers: read an answer, and accept, edit or reject a draft.

Each verdict goes through `feedback.record_verdict` (one verdict per answer, an edit must change the draft):
feedback stored and published and an `answer_reviewed` audit record; a retry with the same `event_id` adds
neither twice.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from streamdesk.agent import answers
from streamdesk.agent.answers import Answer
from streamdesk.api.auth import Gate, PrincipalDep
from streamdesk.api.deps import ConnDep, OptionalPublisherDep
from streamdesk.feedback import service as feedback
from streamdesk.feedback.models import FeedbackEvent
from streamdesk.identity.models import Principal
from streamdesk.kafka import Publisher

router = APIRouter(tags=["answers"], dependencies=[Gate])


class Verdict(BaseModel):
    """Optional id to make retries idempotent."""

    event_id: str | None = Field(default=None, min_length=1, max_length=200)


class EditVerdict(Verdict):
    """The text the operator sends instead of the draft."""

    text: str = Field(min_length=1, max_length=20_000)


def _answer(conn: ConnDep, answer_id: str, operator: Principal) -> Answer:
    found = answers.get_answer(conn, answer_id=answer_id)
    if found is None or found.tenant != operator.tenant:
        raise HTTPException(404, f"no answer {answer_id!r} in tenant {operator.tenant!r}")
    return found


def _record(
    conn: ConnDep,
    *,
    answer_id: str,
    operator: Principal,
    kind: Literal["accepted", "edited", "rejected"],
    verdict: Verdict | None,
    publisher: Publisher | None,
    edited_text: str | None = None,
) -> FeedbackEvent:
    answer = _answer(conn, answer_id, operator)
    if edited_text is not None and not edited_text.strip():
        raise HTTPException(422, "the edited text is blank; send the text the customer should get")
    event_id = (verdict.event_id if verdict else None) or str(uuid.uuid4())
    event = feedback.review_event(
        answer=answer, kind=kind, reviewer=operator, event_id=event_id, edited_text=edited_text
    )
    return feedback.record_verdict(conn, event=event, via="api", reviewer=operator, publisher=publisher)


@router.get("/{answer_id}")
def show_answer(answer_id: str, operator: PrincipalDep, conn: ConnDep) -> Answer:
    """One answer with its citations and tool trace."""
    return _answer(conn, answer_id, operator)


@router.post("/{answer_id}/accept", status_code=202)
def accept_answer(
    answer_id: str,
    operator: PrincipalDep,
    conn: ConnDep,
    publisher: OptionalPublisherDep,
    body: Verdict | None = None,
) -> FeedbackEvent:
    """Accept the draft as written (an `accepted` signal on the `feedback` topic)."""
    return _record(conn, answer_id=answer_id, operator=operator, kind="accepted", verdict=body, publisher=publisher)


@router.post("/{answer_id}/edit", status_code=202)
def edit_answer(
    answer_id: str, body: EditVerdict, operator: PrincipalDep, conn: ConnDep, publisher: OptionalPublisherDep
) -> FeedbackEvent:
    """Send an edited text instead of the draft (an `edited` signal, the text redacted for training)."""
    return _record(
        conn,
        answer_id=answer_id,
        operator=operator,
        kind="edited",
        verdict=body,
        publisher=publisher,
        edited_text=body.text,
    )


@router.post("/{answer_id}/reject", status_code=202)
def reject_answer(
    answer_id: str,
    operator: PrincipalDep,
    conn: ConnDep,
    publisher: OptionalPublisherDep,
    body: Verdict | None = None,
) -> FeedbackEvent:
    """Reject the draft (a `rejected` signal on the `feedback` topic)."""
    return _record(conn, answer_id=answer_id, operator=operator, kind="rejected", verdict=body, publisher=publisher)
