"""The RBAC matrix: every role x every tool, decided through `enforce`, every decision (denials too) in the trail."""

from __future__ import annotations

from typing import Any

import psycopg

from streamdesk.audit import service as audit
from streamdesk.identity.models import Role
from streamdesk.policy import rules
from streamdesk.policy import service as policy
from tests.policy.conftest import CUSTOMER, ORDER, TICKET, TRUSTED, principal_for

# A = allowed, D = denied, P = allowed once a supervisor approves. Amounts are below every limit here.
MATRIX = """
tool                            viewer auditor agent supervisor admin service_agent
find_user_id_by_email           D      A       A     A          A     A
find_user_id_by_name_zip        D      A       A     A          A     A
get_user_details                D      A       A     A          A     A
get_order_details               D      A       A     A          A     A
get_product_details             A      A       A     A          A     A
get_item_details                A      A       A     A          A     A
list_all_product_types          A      A       A     A          A     A
calculate                       A      A       A     A          A     A
search_knowledge                A      A       A     A          A     A
cancel_pending_order            D      D       P     P          P     P
modify_pending_order_address    D      D       A     A          A     A
modify_pending_order_items      D      D       A     A          A     A
modify_pending_order_payment    D      D       P     P          P     P
modify_user_address             D      D       A     A          A     A
return_delivered_order_items    D      D       A     A          A     A
exchange_delivered_order_items  D      D       A     A          A     A
refund                          D      D       A     A          A     A
update_ticket                   D      D       A     A          A     A
escalate                        D      D       A     A          A     A
transfer_to_human_agents        D      D       A     A          A     A
"""
OUTCOMES = {"A": "allowed", "D": "denied", "P": "approval_required"}
ADDRESS = {"address1": "698 Maple Drive", "address2": "Suite 465", "city": "Denver", "state": "CO", "zip": "80217"}
CALLS: dict[str, tuple[str, dict[str, Any], float | None]] = {
    "find_user_id_by_email": ("read", {"email": "mei.davis@example.com"}, None),
    "find_user_id_by_name_zip": ("read", {"first_name": "Mei", "last_name": "Davis", "zip": "80217"}, None),
    "get_user_details": ("read", {"user_id": CUSTOMER}, None),
    "get_order_details": ("read", {"order_id": ORDER}, None),
    "get_product_details": ("read", {"product_id": "8310926033"}, None),
    "get_item_details": ("read", {"item_id": "6469567736"}, None),
    "list_all_product_types": ("read", {}, None),
    "calculate": ("read", {"expression": "54.04 + 195.11"}, None),
    "search_knowledge": ("read", {"query": "return policy for water bottles"}, None),
    "cancel_pending_order": ("write", {"order_id": ORDER, "reason": "no longer needed"}, None),
    "modify_pending_order_address": ("write", {"order_id": ORDER, **ADDRESS}, None),
    "modify_pending_order_items": (
        "write",
        {
            "order_id": ORDER,
            "item_ids": ["2366567022"],
            "new_item_ids": ["1434748144"],
            "payment_method_id": "credit_card_1061405",
        },
        None,
    ),
    "modify_pending_order_payment": ("write", {"order_id": ORDER, "payment_method_id": "credit_card_1061405"}, None),
    "modify_user_address": ("write", {"user_id": CUSTOMER, **ADDRESS}, None),
    "return_delivered_order_items": (
        "write",
        {"order_id": ORDER, "item_ids": ["2366567022"], "payment_method_id": "credit_card_1061405"},
        54.04,
    ),
    "exchange_delivered_order_items": (
        "write",
        {
            "order_id": ORDER,
            "item_ids": ["2366567022"],
            "new_item_ids": ["1434748144"],
            "payment_method_id": "credit_card_1061405",
        },
        54.04,
    ),
    "refund": ("write", {"order_id": ORDER, "amount": 54.04}, None),
    "update_ticket": ("write", {"ticket_id": TICKET, "status": "solved"}, None),
    "escalate": ("write", {"ticket_id": TICKET, "reason": "customer asks for a manager"}, None),
    "transfer_to_human_agents": ("write", {"summary": "wants to talk to a person"}, None),
}


def expected() -> dict[tuple[Role, str], str]:
    """The matrix above as {(role, tool): outcome}."""
    header, *rows = [line.split() for line in MATRIX.strip().splitlines()]
    roles = [Role(name) for name in header[1:]]
    return {(role, row[0]): OUTCOMES[cell] for row in rows for role, cell in zip(roles, row[1:], strict=True)}


def test_the_matrix_covers_every_role_and_every_tool() -> None:
    table = expected()
    assert {role for role, _ in table} == set(Role)
    assert {tool for _, tool in table} == set(CALLS) == set(rules.load_rules().permissions)


def test_every_role_and_tool_decides_as_the_matrix_says_and_is_audited(conn: psycopg.Connection) -> None:
    table = expected()
    decided: dict[tuple[Role, str], str] = {}
    for (role, tool), _ in sorted(table.items()):
        kind, arguments, amount = CALLS[tool]
        decision = policy.enforce(
            conn,
            ticket_id=TICKET,
            principal=principal_for(role),
            tool_name=tool,
            tool_kind=kind,
            arguments=arguments,
            trusted_values=TRUSTED,
            amount=amount,
        )
        decided[role, tool] = decision.outcome
    assert decided == table
    trail = audit.trail(conn, ticket_id=TICKET)
    assert len(trail) == len(table)
    assert all(r.action == "rbac_decision" and r.policy_version for r in trail)
    audited = {(Role(r.roles[0]), r.tool_name): r.decision for r in trail}
    assert audited == table
    denials = [r for r in trail if r.decision == "denied"]
    assert len(denials) == sum(outcome == "denied" for outcome in table.values()) > 0
    assert all(r.reason and "may not call" in r.reason for r in denials)
    assert audit.verify(conn).ok


def test_permitted_tools_lists_what_the_matrix_allows() -> None:
    table = expected()
    everything = [*CALLS, "drop_database"]
    for role in Role:
        wanted = [tool for tool in CALLS if table[role, tool] != "denied"]
        assert policy.permitted_tools(principal=principal_for(role), tools=everything) == wanted
