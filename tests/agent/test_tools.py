"""The tool registry: τ²-bench names and arguments, validation, transactions, and the ticket tools."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from streamdesk.agent import tools
from streamdesk.agent.exceptions import (
    DuplicateToolError,
    InvalidToolArgumentsError,
    MissingTicketError,
    RuleViolationError,
    UnknownToolError,
)
from streamdesk.agent.models import Tool, ToolContext
from tests.factories import stored_ticket

REGISTRY = tools.default_registry()
TICKET = ToolContext(actor="agent:triage", ticket_source="zendesk", ticket_id="42")
TAU2_TOOLS = {
    "find_user_id_by_email",
    "find_user_id_by_name_zip",
    "get_user_details",
    "get_order_details",
    "get_product_details",
    "get_item_details",
    "list_all_product_types",
    "calculate",
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
    "transfer_to_human_agents",
}


def test_every_tau2_action_name_and_argument_set_is_registered(retail_tasks: dict[str, dict[str, Any]]) -> None:
    assert set(REGISTRY.names()) == TAU2_TOOLS | {"update_ticket", "escalate"}
    for task in retail_tasks.values():
        for action in (task.get("evaluation_criteria") or {}).get("actions") or []:
            parameters = REGISTRY.get(action["name"]).parameters
            assert set(action["arguments"]) == set(parameters["required"]) == set(parameters["properties"])


def test_writes_are_marked_and_money_or_address_changes_are_high_risk() -> None:
    writes = {tool.name for tool in REGISTRY if tool.kind == "write"}
    risky = {tool.name for tool in REGISTRY if tool.high_risk}
    assert risky == {name for name in writes if name.startswith(("cancel_", "modify_", "return_", "exchange_"))}
    assert {"transfer_to_human_agents", "update_ticket", "escalate"} <= writes - risky
    assert all(tool.description and "\n" not in tool.description.strip() for tool in REGISTRY)


def test_unknown_tools_and_bad_arguments_are_refused_with_the_fix() -> None:
    with pytest.raises(UnknownToolError, match="no tool named 'refund_everything'; known tools: find_user_id"):
        REGISTRY.get("refund_everything")
    with pytest.raises(InvalidToolArgumentsError, match="cancel_pending_order: reason: 'because' is not one of"):
        REGISTRY.validate(name="cancel_pending_order", arguments={"order_id": "#W1234567", "reason": "because"})
    with pytest.raises(InvalidToolArgumentsError, match="Additional properties are not allowed"):
        REGISTRY.validate(name="get_order_details", arguments={"order_id": "#W1234567", "sql": "DROP TABLE"})
    with pytest.raises(DuplicateToolError, match="'calculate' is registered twice"):
        tools.ToolRegistry([REGISTRY.get("calculate"), REGISTRY.get("calculate")])


def created(conn: psycopg.Connection) -> None:
    fields = {"subject": "Cancel my order", "status": "open", "priority": "normal", "tags": ["orders"]}
    stored_ticket(conn, "42", version=[1700000000000], **fields)


def ticket(conn: psycopg.Connection) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status, priority, tags, metadata, version FROM tickets WHERE source = 'zendesk' AND ticket_id = '42'"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_ticket_tools_fold_agent_events_into_the_ticket(conn: psycopg.Connection) -> None:
    created(conn)

    REGISTRY.call(
        conn, name="update_ticket", arguments={"status": "pending", "note": "asked for email"}, context=TICKET
    )
    status, priority, tags, metadata, version = ticket(conn)
    assert (status, priority, tags, version) == ("pending", "normal", ["orders"], [1700000000001])
    assert metadata == {"agent_note": "asked for email", "agent_actor": "agent:triage"}

    REGISTRY.call(conn, name="escalate", arguments={"reason": "legal threat", "priority": "urgent"}, context=TICKET)
    result = REGISTRY.call(
        conn, name="transfer_to_human_agents", arguments={"summary": "wants a lawyer"}, context=TICKET
    )
    status, priority, tags, metadata, _ = ticket(conn)
    assert (status, priority, tags) == ("pending", "urgent", ["orders", "escalated", "human-handoff"])
    assert metadata["escalation_reason"] == "legal threat" and metadata["handoff_summary"] == "wants a lawyer"
    assert result["result"] == "Transfer successful"


def test_ticket_tools_need_the_conversation_ticket(conn: psycopg.Connection) -> None:
    with pytest.raises(MissingTicketError, match="update_ticket needs the ticket of the conversation"):
        REGISTRY.call(
            conn, name="update_ticket", arguments={"status": "solved", "note": "done"}, context=ToolContext(actor="a")
        )
    assert REGISTRY.call(
        conn, name="transfer_to_human_agents", arguments={"summary": "s"}, context=ToolContext(actor="a")
    )


def test_a_failing_call_rolls_back_its_writes(conn: psycopg.Connection) -> None:
    created(conn)

    def half_done(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        tools.update_ticket(conn, {"status": "solved", "note": "half"}, context)
        raise RuleViolationError("the second half of this change is not allowed")

    registry = tools.ToolRegistry(
        [Tool(name="half", description="d", parameters={"type": "object"}, kind="write", handler=half_done)]
    )
    with pytest.raises(RuleViolationError):
        registry.call(conn, name="half", arguments={}, context=TICKET)
    assert ticket(conn)[0] == "open"
    assert json.dumps(ticket(conn)[3]) == "{}"
