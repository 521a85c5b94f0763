"""Tenant scoping of /audit: an auditor of one tenant never reads another tenant's records, on any route."""

from __future__ import annotations

import json

import pytest

from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.identity.models import agent_for_customer
from tests.api.conftest import OTHER_AUDITOR_TOKEN, OTHER_TENANT, Stack, auth

SECRET = "acme-only: the merger closes on Friday"
TICKET = "zendesk:T-1"
"""The same ticket id in both tenants, so a ticket query alone cannot keep them apart."""


@pytest.fixture(scope="module")
def other_tenant(stack: Stack) -> None:
    """Two records of tenant `acme` on ticket zendesk:T-1, among the default tenant's seeded ones."""
    with db.connect(stack.database_url, autocommit=True) as conn:
        for decision in ("allowed", "denied"):
            event = AuditEvent.for_principal(
                agent_for_customer("acme-customer", tenant=OTHER_TENANT),
                action=AuditAction.TOOL_CALL,
                ticket_id=TICKET,
                tool_name="get_order_details",
                arguments={"order_id": "#W9"},
                decision=decision,
                reason=SECRET,
            )
            audit.append(conn, event=event)


def tenants_of(records: list[dict[str, object]]) -> set[object]:
    return {record["tenant"] for record in records}


def test_an_auditor_reads_only_their_tenants_records(stack: Stack, other_tenant: None) -> None:
    mine = stack.client.get("/audit", headers=auth("auditor"))
    assert mine.status_code == 200 and mine.json() and tenants_of(mine.json()) == {"default"}
    trail = stack.client.get("/audit", params={"ticket": TICKET}, headers=auth("auditor")).json()
    assert trail and tenants_of(trail) == {"default"} and SECRET not in json.dumps(trail)
    export = stack.client.get("/audit/export", headers=auth("auditor"))
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert lines and tenants_of(lines) == {"default"} and SECRET not in export.text
    assert export.headers["X-Record-Count"] == str(len(lines))
    ticket_export = stack.client.get("/audit/export", params={"ticket": TICKET}, headers=auth("auditor"))
    assert SECRET not in ticket_export.text and ticket_export.text
    verified = stack.client.get("/audit/verify", headers=auth("auditor"))
    assert verified.json()["ok"] is True and SECRET not in verified.text and OTHER_TENANT not in verified.text


def test_the_other_tenants_auditor_reads_only_theirs(stack: Stack, other_tenant: None) -> None:
    theirs = {"X-API-Key": OTHER_AUDITOR_TOKEN}
    listed = stack.client.get("/audit", headers=theirs).json()
    assert [r["decision"] for r in listed] == ["allowed", "denied"] and tenants_of(listed) == {OTHER_TENANT}
    trail = stack.client.get("/audit", params={"ticket": TICKET}, headers=theirs).json()
    assert tenants_of(trail) == {OTHER_TENANT} and len(trail) == 2
    export = stack.client.get("/audit/export", headers=theirs)
    assert tenants_of([json.loads(line) for line in export.text.splitlines()]) == {OTHER_TENANT}
    assert stack.client.get("/audit", params={"after_seq": 0, "limit": 1}, headers=theirs).json()[0]["tenant"] == (
        OTHER_TENANT
    )


def test_a_tampered_trail_takes_no_more_records_and_says_how_to_repair(stack: Stack, other_tenant: None) -> None:
    """With the signed head deleted, an audited action is refused with 503 instead of chaining onto the gap."""
    with db.connect(stack.database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL streamdesk.audit_maintenance = 'on'")
        conn.execute("DELETE FROM audit_head")
    try:
        refused = stack.client.post(
            f"/approvals/{stack.ids['action_id']}/reject", headers=auth("supervisor"), json={"note": "no"}
        )
        assert refused.status_code == 503 and "audit checkpoint --adopt-head" in refused.json()["detail"]
        with db.connect(stack.database_url, autocommit=True) as conn:
            status = conn.execute("SELECT status FROM pending_actions WHERE id = %s", (stack.ids["action_id"],))
            assert status.fetchone() == ("pending",), "the unaudited rejection was rolled back"
        verified = stack.client.get("/audit/verify", headers=auth("auditor")).json()
        assert verified["ok"] is False and "no signed head" in verified["reason"]
    finally:
        with db.connect(stack.database_url, autocommit=True) as conn:
            audit.checkpoint(conn, adopt_head=True)
    assert stack.client.get("/audit/verify", headers=auth("auditor")).json()["ok"] is True
