"""/deliveries: where each reply to the helpdesk stands (queued, sending, retrying, delivered, dead-lettered)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from streamdesk.delivery import service
from streamdesk.delivery.models import Delivery, DeliveryStatus
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep

router = APIRouter(tags=["deliveries"], dependencies=[Gate])


@router.get("")
def list_deliveries(
    operator: PrincipalDep,
    conn: ConnDep,
    answer_id: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    ticket_id: Annotated[str | None, Query(max_length=200)] = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Delivery]:
    """The caller's tenant's deliveries, newest first: of one answer, one ticket, or in one state."""
    return service.list_deliveries(
        conn,
        tenant=operator.tenant,
        answer_id=answer_id,
        source=source,
        ticket_id=ticket_id,
        status=status,
        limit=limit,
    )


@router.get("/{reply_id}")
def show_delivery(reply_id: str, operator: PrincipalDep, conn: ConnDep) -> Delivery:
    """One delivery (an answer's reply id is the answer id)."""
    found = service.get_delivery(conn, reply_id=reply_id)
    if found is None or found.tenant != operator.tenant:
        raise HTTPException(404, f"no delivery of reply {reply_id!r} in tenant {operator.tenant!r}")
    return found
