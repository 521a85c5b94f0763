"""The console's audit page reads through the same tenant-scoped audit service as the API."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.identity.models import agent_for_customer
from tests.console.conftest import TICKET_REF, seed_pending
from tests.console.test_views import client, sign_in

__all__ = ["client"]
SECRET = "acme-only reason"


def test_the_audit_page_shows_only_the_operators_tenant(client: TestClient, conn: psycopg.Connection) -> None:
    seed_pending(conn)
    other = AuditEvent.for_principal(
        agent_for_customer("acme-customer", tenant="acme"),
        action=AuditAction.TOOL_CALL,
        ticket_id=TICKET_REF,
        tool_name="get_order_details",
        decision="allowed",
        reason=SECRET,
    )
    audit.append(conn, event=other)
    sign_in(client, "ada")
    page = client.get("/console/audit", params={"ticket": TICKET_REF})
    assert page.status_code == 200 and "approval_requested" in page.text
    assert SECRET not in page.text and "acme-customer" not in page.text
    assert SECRET not in client.get("/console/audit").text
