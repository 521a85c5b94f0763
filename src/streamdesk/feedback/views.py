"""/feedback: operators send signals on the agent's answers; each is stored and published; and list them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, ValidationError

from streamdesk import db
from streamdesk.api.auth import Gate, PrincipalDep
from streamdesk.api.deps import OptionalPublisherDep
from streamdesk.contracts import utcnow
from streamdesk.feedback import service
from streamdesk.feedback.models import FeedbackEvent, FeedbackKind

router = APIRouter(tags=["feedback"], dependencies=[Gate])


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
