"""PII never enters the append-only trail: free text is redacted at the append boundary, and the chain verifies."""

from __future__ import annotations

import io

import psycopg

from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.identity.models import agent_for_customer

CARD = "4111 1111 1111 1111"
EMAIL = "mei.davis@example.com"
PHONE = "+1 415 555 0100"
DIGITS = ("4111", "1111 1111", "4111111111111111", "mei.davis", "555 0100")


def pii_event() -> AuditEvent:
    """A knowledge search whose query, reason and details carry a card number, an email and a phone number."""
    return AuditEvent.for_principal(
        agent_for_customer("mei_davis_8935"),
        action=AuditAction.TOOL_CALL,
        ticket_id="zendesk:T-9",
        tool_name="search_knowledge",
        arguments={"query": f"charged twice on card {CARD}, reach me at {EMAIL} or {PHONE}", "k": 4},
        decision="allowed",
        reason=f"customer quoted {CARD}",
        details={"source": "router", "echo": [CARD.replace(" ", "-"), 4111111111111111], EMAIL: "key"},
    )


def test_pii_is_redacted_before_it_is_hashed_and_stored(conn: psycopg.Connection) -> None:
    returned = audit.append(conn, event=pii_event())
    (stored,) = conn.execute("SELECT content FROM audit_records").fetchone() or ()
    assert not any(digits in stored for digits in DIGITS), stored
    assert returned.arguments == {"query": "charged twice on card [CARD], reach me at [EMAIL] or [PHONE]", "k": 4}
    assert returned.reason == "customer quoted [CARD]"
    assert returned.details == {"source": "router", "echo": ["[CARD]", "[CARD]"], "[EMAIL]": "key"}
    assert audit.trail(conn, ticket_id="zendesk:T-9") == [returned]
    out = io.StringIO()
    audit.export(conn, out=out)
    assert not any(digits in out.getvalue() for digits in DIGITS)
    assert audit.verify(conn).ok


def test_ids_and_amounts_are_kept(conn: psycopg.Connection) -> None:
    """Order ids, item ids and amounts are not PII shapes, so the trail still says what was acted on."""
    event = AuditEvent.for_principal(
        agent_for_customer("mei_davis_8935"),
        action=AuditAction.TOOL_CALL,
        ticket_id="zendesk:T-9",
        tool_name="return_delivered_order_items",
        arguments={"order_id": "#W2890441", "item_ids": ["1008292230", "6401214406"], "amount": 1234.5},
    )
    assert audit.append(conn, event=event).arguments == event.arguments
