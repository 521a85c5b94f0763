"""/feedback: operators send signals on the agent's answers; each is stored and published; and list them.

/answers/{id}/accept|edit|reject: verdicts on a draft, each through `record_verdict` (one verdict per answer, an
edit must change the draft): feedback stored and published and an `answer_reviewed` audit record; a retry with
the same `event_id` adds neither twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, ValidationError

from streamdesk import db
from streamdesk.agent.views import answer_for
from streamdesk.contracts import utcnow
from streamdesk.feedback import service
from streamdesk.feedback.models import FeedbackEvent, FeedbackKind
from streamdesk.identity.models import Principal
from streamdesk.kafka import Publisher
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep, OptionalPublisherDep

router = APIRouter(tags=["feedback"], dependencies=[Gate])
verdicts = APIRouter(tags=["answers"], dependencies=[Gate])
"""Mounted at `/answers` beside `agent.views.router`."""


class FeedbackBody(BaseModel):
    """A signal on one answer; the operator sending it is recorded as the annotator."""

    answer_id: str = Field(min_length=1)
    ticket_id: str = Field(min_length=1)
    kind: FeedbackKind
    rating: int | None = Field(default=None, ge=1, le=5)
    edited_text: str | None = None
    adapter_version: str | None = None
    customer_id: str | None = None
    event_id: str | None = Field(default=None, description="Send your own id to make retries idempotent.")
    occurred_at: datetime | None = None


@router.post("", status_code=202)
def post_feedback(body: FeedbackBody, operator: PrincipalDep, publisher: OptionalPublisherDep) -> FeedbackEvent:
    """Store a thumb, a draft verdict (`record_verdict`'s rules), a reopen or a CSAT score; publish it on `feedback`."""
    try:
        event = FeedbackEvent(
            **body.model_dump(exclude={"event_id", "occurred_at"}),
            event_id=body.event_id or str(uuid.uuid4()),
            occurred_at=body.occurred_at or utcnow(),
            annotator_id=operator.id,
            tenant=operator.tenant,
        )
    except ValidationError as exc:
        raise HTTPException(422, exc.errors()[0]["msg"]) from None
    with db.request_connection() as conn:
        return service.record_signal(conn, event=event, via="api", reviewer=operator, publisher=publisher)


@router.get("")
def list_feedback(
    operator: PrincipalDep, answer_id: Annotated[str, Query(min_length=1, max_length=200)]
) -> list[FeedbackEvent]:
    """The signals stored on answer `answer_id` (of the caller's tenant), oldest first."""
    with db.request_connection() as conn:
        signals = service.signals_for(conn, answer_ids=[answer_id])[answer_id]
    return [signal for signal in signals if signal.tenant == operator.tenant]


class Verdict(BaseModel):
    """Optional id to make retries idempotent."""

    event_id: str | None = Field(default=None, min_length=1, max_length=200)


class EditVerdict(Verdict):
    """The text the operator sends instead of the draft."""

    text: str = Field(min_length=1, max_length=20_000)


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
    answer = answer_for(conn, answer_id, operator)
    if edited_text is not None and not edited_text.strip():
        raise HTTPException(422, "the edited text is blank; send the text the customer should get")
    event_id = (verdict.event_id if verdict else None) or str(uuid.uuid4())
    event = service.review_event(
        answer=answer, kind=kind, reviewer=operator, event_id=event_id, edited_text=edited_text
    )
    return service.record_verdict(conn, event=event, via="api", reviewer=operator, publisher=publisher)


@verdicts.post("/{answer_id}/accept", status_code=202)
def accept_answer(
    answer_id: str,
    operator: PrincipalDep,
    conn: ConnDep,
    publisher: OptionalPublisherDep,
    body: Verdict | None = None,
) -> FeedbackEvent:
    """Accept the draft as written (an `accepted` signal on the `feedback` topic)."""
    return _record(conn, answer_id=answer_id, operator=operator, kind="accepted", verdict=body, publisher=publisher)


@verdicts.post("/{answer_id}/edit", status_code=202)
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


@verdicts.post("/{answer_id}/reject", status_code=202)
def reject_answer(
    answer_id: str,
    operator: PrincipalDep,
    conn: ConnDep,
    publisher: OptionalPublisherDep,
    body: Verdict | None = None,
) -> FeedbackEvent:
    """Reject the draft (a `rejected` signal on the `feedback` topic)."""
    return _record(conn, answer_id=answer_id, operator=operator, kind="rejected", verdict=body, publisher=publisher)
