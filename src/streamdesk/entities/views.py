"""/tickets: submit a ticket (a `ticket` event for the canonical topic) and list tickets; one ticket with its answers
is `agent.views`."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from opentelemetry import trace
from pydantic import AfterValidator, BaseModel, Field

from streamdesk import contracts, telemetry, topics
from streamdesk.config import get_settings
from streamdesk.contracts import Requester, TicketEvent, utcnow
from streamdesk.entities import store
from streamdesk.gateway import intake
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep

router = APIRouter(tags=["tickets"], dependencies=[Gate])


def _ticket_text(text: str) -> str:
    limit = get_settings().ingest.ticket_text_max_chars
    if len(text) > limit:
        raise ValueError(
            f"{len(text)} characters is over the ticket text limit of {limit}; shorten it or raise "
            "STREAMDESK_INGEST__TICKET_TEXT_MAX_CHARS"
        )
    return text


Text = Annotated[str, AfterValidator(_ticket_text)]
"""A ticket subject or body: at most `ingest.ticket_text_max_chars`, the limit every ticket event holds to."""
Name = Annotated[str, Field(min_length=1, max_length=200)]


class TicketSubmission(BaseModel):
    """A new ticket from an operator (or an integration using an operator's key)."""

    subject: Text = Field(min_length=1)
    body: Text = ""
    source: Name = Field(default="api", description="Source system the ticket id belongs to.")
    ticket_id: Name | None = Field(default=None, description="Your ticket id; a new one is made when unset.")
    customer_id: Name | None = None
    requester_email: Name | None = None
    priority: Name | None = None
    tags: list[Name] = Field(default_factory=list, max_length=50)


class SubmittedTicket(BaseModel):
    """The ticket event that was accepted, and the topic the relay puts it on."""

    topic: str
    event_id: str
    source: str
    ticket_id: str
    tenant: str


class TicketSummary(BaseModel):
    """One row of the ticket list."""

    source: str
    ticket_id: str
    subject: str | None
    status: str | None
    priority: str | None
    assignee_id: str | None
    requester: dict[str, Any] | None
    customer_id: str | None
    tags: list[str]
    tenant: str
    created_at: datetime | None
    updated_at: datetime


@router.post("", status_code=202)
def submit_ticket(body: TicketSubmission, operator: PrincipalDep, conn: ConnDep, request: Request) -> SubmittedTicket:
    """Store a `created` ticket event in the durable intake, for the relay to the canonical ticket topic.

    202 means PostgreSQL holds it: like a webhook, it is re-published until ingest has stored it, so it
    survives a stop or a crash of the broker. It carries the trace context of a producer span (continuing
    the caller's `traceparent`).
    """
    event = TicketEvent(
        event_id=str(uuid.uuid4()),
        source=body.source,
        ticket_id=body.ticket_id or f"API-{uuid.uuid4().hex[:12]}",
        event_type="created",
        version=[time.time_ns()],
        occurred_at=utcnow(),
        subject=body.subject,
        body=body.body,
        status="new",
        priority=body.priority,
        requester=Requester(email=body.requester_email) if body.requester_email else None,
        customer_id=body.customer_id,
        tags=body.tags,
        tenant=operator.tenant,
        metadata={"submitted_by": operator.id},
    )
    with telemetry.tracer(__name__).start_as_current_span(
        f"send {topics.TICKET}",
        context=telemetry.extract_context(request.headers.items()),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topics.TICKET,
            "streamdesk.ticket": f"{event.source}:{event.ticket_id}",
        },
    ):
        payload = event.to_json()
        contracts.validate(topics.spec(topics.TICKET).schema, payload)
        with conn.transaction():
            intake.store_delivery(
                conn=conn,
                source="api",
                delivery_id=event.event_id,
                received_at=event.occurred_at,
                topic=topics.TICKET,
                key=event.key,
                headers=telemetry.inject_headers(),
                body=json.dumps(payload, separators=(",", ":")).encode(),
            )
    return SubmittedTicket(
        topic=topics.TICKET,
        event_id=event.event_id,
        source=event.source,
        ticket_id=event.ticket_id,
        tenant=event.tenant,
    )


@router.get("")
def list_tickets(
    operator: PrincipalDep,
    conn: ConnDep,
    status: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[TicketSummary]:
    """Tickets of the caller's tenant, most recently updated first."""
    rows = store.list_tickets(conn, tenant=operator.tenant, status=status, limit=limit, offset=offset)
    return [TicketSummary(**row) for row in rows]
