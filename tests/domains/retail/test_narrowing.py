"""Retail grammar narrowing: id arguments limited to the ids the trusted tool results established."""

from __future__ import annotations

from typing import Any

import pytest

from streamdesk.agent import narrowing, tools
from streamdesk.agent.models import Tool, ToolCall
from streamdesk.domains.retail import intents, renderers
from streamdesk.domains.retail import narrowing as retail

REGISTRY = tools.default_registry()


def test_narrowed_grammars_offer_only_known_ids() -> None:
    user = {"user_id": "u_a_1", "payment_methods": {"credit_card_1": {}}, "orders": ["#W1", "#W2"]}
    order = {"order_id": "#W1", "status": "pending", "items": [{"item_id": "11", "product_id": "99"}]}
    known = retail.known_values([{"user_id": "u_a_1"}, user, order])
    narrowed, usable = narrowing.narrowed_tools(list(REGISTRY), allowed=REGISTRY.names(), known=known)
    by_name = {tool.name: tool for tool in narrowed}
    assert by_name["get_order_details"].parameters["properties"]["order_id"] == {"enum": ["#W2"]}
    assert by_name["cancel_pending_order"].parameters["properties"]["order_id"] == {"enum": ["#W1"]}
    assert "return_delivered_order_items" not in usable and "exchange_delivered_order_items" not in usable
    assert "find_user_id_by_email" not in usable and "get_user_details" not in usable
    assert by_name["modify_pending_order_payment"].parameters["properties"]["payment_method_id"] == {
        "enum": ["credit_card_1"]
    }
    named = retail.known_values([user, order], named_orders=["#W1"])
    assert (
        "get_order_details"
        not in narrowing.narrowed_tools(list(REGISTRY), allowed=["get_order_details"], known=named)[1]
    )


def _arguments(tools_: list[Tool], name: str) -> dict[str, Any]:
    return next(t for t in tools_ if t.name == name).parameters


USER = {"user_id": "u_a_1", "payment_methods": {"paypal_1": {}}, "orders": ["#W1", "#W2"]}
THREE_LINES = {
    "order_id": "#W1",
    "status": "delivered",
    "items": [
        {"item_id": "11", "product_id": "90", "name": "Desk Lamp"},
        {"item_id": "12", "product_id": "91", "name": "Water Bottle"},
        {"item_id": "13", "product_id": "91", "name": "Water Bottle"},
    ],
}


def test_item_lists_are_sets_of_one_orders_items_named_by_the_ticket() -> None:
    other = {"order_id": "#W2", "status": "delivered", "items": [{"item_id": "21", "product_id": "92", "name": "Mug"}]}
    named = retail.known_values([USER, THREE_LINES, other], text="Please return the water bottles.")
    tools_, usable = narrowing.narrowed_tools(list(REGISTRY), allowed=["return_delivered_order_items"], known=named)
    (branch,) = _arguments(tools_, "return_delivered_order_items")["anyOf"]
    assert usable == ["return_delivered_order_items"]
    assert branch["properties"]["order_id"] == {"const": "#W1"}
    assert branch["properties"]["item_ids"] == {"enum": [["12"], ["13"], ["12", "13"]]}
    assert branch["properties"]["payment_method_id"] == {"enum": ["paypal_1"]}
    unnamed = retail.known_values([USER, THREE_LINES, other], text="Please return everything.")
    tools_, _ = narrowing.narrowed_tools(list(REGISTRY), allowed=["return_delivered_order_items"], known=unnamed)
    branches = _arguments(tools_, "return_delivered_order_items")["anyOf"]
    assert [b["properties"]["order_id"]["const"] for b in branches] == ["#W1", "#W2"]
    assert len(branches[0]["properties"]["item_ids"]["enum"]) == 7
    assert branches[1]["properties"]["item_ids"] == {"enum": [["21"]]}


def test_an_order_with_many_items_falls_back_to_a_flat_item_list() -> None:
    lines = [{"item_id": str(n), "product_id": "90", "name": f"Thing {n}"} for n in range(30, 36)]
    order = {"order_id": "#W1", "status": "delivered", "items": lines}
    known = retail.known_values([USER, order], text="return all of it")
    tools_, _ = narrowing.narrowed_tools(list(REGISTRY), allowed=["return_delivered_order_items"], known=known)
    items = _arguments(tools_, "return_delivered_order_items")["properties"]["item_ids"]
    assert items["items"] == {"enum": [str(n) for n in range(30, 36)]} and items["maxItems"] == 6


def test_each_new_item_is_a_variant_of_the_product_at_its_position() -> None:
    products = [
        {"product_id": "90", "name": "Desk Lamp", "variants": {"11": {"available": True}, "9001": {"available": True}}},
        {"product_id": "91", "name": "Water Bottle", "variants": {"9101": {"available": True}, "9102": {}}},
    ]
    known = retail.known_values([USER, THREE_LINES, *products], text="exchange my desk lamp and a water bottle")
    tools_, usable = narrowing.narrowed_tools(list(REGISTRY), allowed=["exchange_delivered_order_items"], known=known)
    branches = _arguments(tools_, "exchange_delivered_order_items")["anyOf"]
    assert usable == ["exchange_delivered_order_items"]
    pairs = [(b["properties"]["item_ids"]["const"], b["properties"]["new_item_ids"]["prefixItems"]) for b in branches]
    assert pairs[0] == (["11"], [{"enum": ["9001"]}])
    assert (["11", "12"], [{"enum": ["9001"]}, {"enum": ["9101"]}]) in pairs
    assert all(
        b["properties"]["new_item_ids"]["minItems"] == len(b["properties"]["item_ids"]["const"]) for b in branches
    )
    assert narrowing.worst_case_chars(_arguments(tools_, "exchange_delivered_order_items")) < 200


@pytest.mark.parametrize(
    ("text", "pending", "delivered", "processed"),
    [
        ("Cancel my order please", True, False, False),
        ("I want to return the lamp", False, True, False),
        ("cancel one order and return another", True, True, False),
        ("Where is my order?", True, True, True),
        ("Hello", True, True, True),
    ],
)
def test_orders_the_ticket_cannot_act_on_are_shown_briefly(
    text: str, pending: bool, delivered: bool, processed: bool
) -> None:
    relevant = retail.order_statuses(intents.features(text))
    shown = {s: relevant is None or relevant(s) for s in ("pending", "delivered", "processed")}
    assert shown == {"pending": pending, "delivered": delivered, "processed": processed}
    call = ToolCall(tool="get_order_details", arguments={"order_id": "#W1"})
    order = {"order_id": "#W1", "status": "processed", "items": [{"item_id": "11", "name": "Lamp"}]}
    content = renderers.lookups_message([(call, order, None)], relevant=relevant)["content"]
    assert ("order #W1: processed; items: Lamp" in content) is not processed
