"""/audit: a ticket's trail (or the latest records), chain verification, and the export as JSON lines.

Every read is scoped to the caller's tenant; verification walks the whole chain (it cannot be checked
per tenant) and reports record numbers and reasons, never another tenant's content.
"""

from __future__ import annotations

import io
import re
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from streamdesk.audit import service
from streamdesk.audit.models import AuditRecord, VerifyReport
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep

router = APIRouter(tags=["audit"], dependencies=[Gate])
TicketQuery = Annotated[str | None, Query(min_length=1, max_length=300, description="Ticket id, e.g. zendesk:42.")]


@router.get("")
def show_trail(
    conn: ConnDep,
    principal: PrincipalDep,
    ticket: TicketQuery = None,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRecord]:
    """The caller's tenant's records of `ticket` in chain order, or without it up to `limit` after `after_seq`."""
    if ticket is not None:
        return service.trail(conn, ticket_id=ticket, tenant=principal.tenant)
    return service.records_after(conn, after_seq=after_seq, limit=limit, tenant=principal.tenant)


@router.get("/verify")
def verify_chain(conn: ConnDep) -> VerifyReport:
    """Walk the whole chain and its checkpoints; report the first record changed, removed, moved or forged."""
    return service.verify(conn)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def export_trail(conn: ConnDep, principal: PrincipalDep, ticket: TicketQuery = None) -> Response:
    """The caller's tenant's records (of one ticket, or all) as JSON lines, one canonical record per line."""
    out = io.StringIO()
    count = service.export(conn, out=out, ticket_id=ticket, tenant=principal.tenant)
    name = re.sub(r"[^A-Za-z0-9._:-]", "_", f"audit-{ticket or 'all'}.jsonl")
    return Response(
        out.getvalue(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Record-Count": str(count)},
    )
