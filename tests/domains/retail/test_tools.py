"""The retail tools over the entities table: τ²-bench test-split tasks replayed, rules enforced in code."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streamdesk.agent import tools
from streamdesk.agent.exceptions import (
    CrossCustomerAccessError,
    InvalidToolArgumentsError,
    NotFoundError,
    RuleViolationError,
    ToolError,
)
from streamdesk.agent.models import ToolContext
from streamdesk.seed import taubench

SPLIT = Path(__file__).resolve().parents[4] / "shared" / "data" / taubench.SPLIT_FILE
TEST_SPLIT = [str(t) for t in json.loads(SPLIT.read_text())["test"]] if SPLIT.is_file() else []
STATUS_AFTER = {
    "cancel_pending_order": "cancelled",
    "modify_pending_order_items": "pending (item modified)",
    "return_delivered_order_items": "return requested",
    "exchange_delivered_order_items": "exchange requested",
}
EXPECTED_FAILURES = {
    ("38", "find_user_id_by_email"): NotFoundError,
    ("39", "find_user_id_by_name_zip"): NotFoundError,
    ("55", "find_user_id_by_email"): NotFoundError,
    ("64", "exchange_delivered_order_items"): RuleViolationError,
    ("68", "find_user_id_by_name_zip"): NotFoundError,
}
"""Expected actions that fail in tau2-bench too (a wrong email, a pending order offered for exchange)."""
REGISTRY = tools.default_registry()
Load = Callable[[taubench.World], None]
TaskAction = Callable[[str, int], tuple[dict[str, Any], dict[str, Any]]]


def world_of(retail_world: taubench.World, *user_ids: str) -> taubench.World:
    """Every product plus `user_ids` and all their orders (a copy, so tests cannot alter the session world)."""
    users = {u: retail_world["users"][u] for u in user_ids}
    orders = {o: retail_world["orders"][o] for u in users.values() for o in u["orders"]}
    return copy.deepcopy({"products": retail_world["products"], "users": users, "orders": orders})


def call(conn: psycopg.Connection, name: str, context: ToolContext | None = None, **arguments: Any) -> dict[str, Any]:
    return REGISTRY.call(conn, name=name, arguments=arguments, context=context or ToolContext(actor="test"))


def entity(conn: psycopg.Connection, entity_type: str, external_id: str) -> tuple[list[int], dict[str, Any], str]:
    row = conn.execute(
        "SELECT version, attributes, event_id FROM entities WHERE entity_type = %s AND external_id = %s",
        (entity_type, external_id),
    ).fetchone()
    assert row is not None
    return list(row[0]), row[1], row[2]


@pytest.fixture
def task_action(load_world: Load, retail_world: taubench.World, retail_tasks: dict[str, dict[str, Any]]) -> TaskAction:
    """The arguments and order of a τ²-bench task's `index`-th expected action; the order's customer is loaded."""

    def load(task_id: str, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        arguments = retail_tasks[task_id]["evaluation_criteria"]["actions"][index]["arguments"]
        order = retail_world["orders"][arguments["order_id"]]
        load_world(world_of(retail_world, order["user_id"]))
        return arguments, order

    return load


@pytest.mark.parametrize("task_id", TEST_SPLIT)
def test_test_split_task_replays_through_the_tools(
    task_id: str,
    conn: psycopg.Connection,
    load_world: Load,
    retail_world: taubench.World,
    retail_tasks: dict[str, dict[str, Any]],
) -> None:
    actions = (retail_tasks[task_id].get("evaluation_criteria") or {}).get("actions") or []
    if not actions:
        pytest.skip(f"task {task_id} expects no tool calls")
    world = taubench.mini_world(world=retail_world, tasks=list(retail_tasks.values()), task_ids=[task_id])
    load_world(copy.deepcopy(world))
    customer = next(iter(world["users"])) if len(world["users"]) == 1 else None
    context = ToolContext(actor="replay", customer_id=customer)
    failures: dict[tuple[str, str], type[Exception]] = {}
    for action in actions:
        name, arguments = action["name"], action["arguments"]
        try:
            result = call(conn, name, context, **arguments)
        except ToolError as exc:
            failures[(task_id, name)] = type(exc)
            continue
        if name in STATUS_AFTER:
            assert result["status"] == STATUS_AFTER[name]
            version, stored, event_id = entity(conn, "order", arguments["order_id"])
            assert stored["status"] == STATUS_AFTER[name]
            assert version > [0, 0] and event_id.startswith(f"agent:{name}:")
        if name == "modify_pending_order_address":
            assert result["address"]["address1"] == arguments["address1"]
        if name == "modify_user_address":
            assert entity(conn, "customer", arguments["user_id"])[1]["address"]["zip"] == arguments["zip"]
        if name == "modify_pending_order_items":
            assert set(arguments["new_item_ids"]) <= {item["item_id"] for item in result["items"]}
    assert failures == {key: error for key, error in EXPECTED_FAILURES.items() if key[0] == task_id}


def test_cancel_refunds_every_payment_and_gift_cards_at_once(
    conn: psycopg.Connection, load_world: Load, retail_world: taubench.World
) -> None:
    order_id = next(
        o["order_id"]
        for o in retail_world["orders"].values()
        if o["status"] == "pending" and o["payment_history"][0]["payment_method_id"].startswith("gift_card")
    )
    original = retail_world["orders"][order_id]
    user_id, payment = original["user_id"], original["payment_history"][0]
    load_world(world_of(retail_world, user_id))
    balance = retail_world["users"][user_id]["payment_methods"][payment["payment_method_id"]]["balance"]

    result = call(conn, "cancel_pending_order", order_id=order_id, reason="ordered by mistake")

    assert result["status"] == "cancelled" and result["cancel_reason"] == "ordered by mistake"
    assert result["payment_history"][-1] == {**payment, "transaction_type": "refund"}
    cards = entity(conn, "customer", user_id)[1]["payment_methods"]
    assert cards[payment["payment_method_id"]]["balance"] == round(balance + payment["amount"], 2)
    with pytest.raises(RuleViolationError, match=rf"{order_id} is 'cancelled'; only 'pending'"):
        call(conn, "cancel_pending_order", order_id=order_id, reason="ordered by mistake")


def test_task_36_modifies_items_once_with_the_price_difference(
    conn: psycopg.Connection, retail_world: taubench.World, task_action: TaskAction
) -> None:
    arguments, order = task_action("36", 0)
    variants = {i: v for p in retail_world["products"].values() for i, v in p["variants"].items()}
    old_prices = {item["item_id"]: item["price"] for item in order["items"]}
    difference = round(
        sum(
            variants[n]["price"] - old_prices[o]
            for o, n in zip(arguments["item_ids"], arguments["new_item_ids"], strict=True)
        ),
        2,
    )

    result = call(conn, "modify_pending_order_items", **arguments)

    by_id = {item["item_id"]: item for item in result["items"]}
    for new_id in arguments["new_item_ids"]:
        assert by_id[new_id]["price"] == variants[new_id]["price"]
        assert by_id[new_id]["options"] == variants[new_id]["options"]
    assert not set(arguments["item_ids"]) & set(by_id)
    assert result["payment_history"][-1] == {
        "transaction_type": "payment" if difference > 0 else "refund",
        "amount": abs(difference),
        "payment_method_id": arguments["payment_method_id"],
    }
    stored = entity(conn, "order", arguments["order_id"])[1]
    assert stored["total"] == round(sum(item["price"] for item in result["items"]), 2)
    with pytest.raises(RuleViolationError, match="'pending \\(item modified\\)'; only 'pending' orders"):
        call(conn, "modify_pending_order_items", **arguments)


def test_task_40_moves_the_payment_and_refunds_the_original(conn: psycopg.Connection, task_action: TaskAction) -> None:
    arguments, order = task_action("40", -1)
    paid = order["payment_history"][0]

    history = call(conn, "modify_pending_order_payment", **arguments)["payment_history"]

    assert history == [
        paid,
        {"transaction_type": "payment", "amount": paid["amount"], "payment_method_id": arguments["payment_method_id"]},
        {"transaction_type": "refund", "amount": paid["amount"], "payment_method_id": paid["payment_method_id"]},
    ]
    with pytest.raises(RuleViolationError, match="exactly one payment"):
        call(conn, "modify_pending_order_payment", **arguments)


def test_task_9_exchange_records_items_and_price_difference(
    conn: psycopg.Connection, retail_world: taubench.World, task_action: TaskAction
) -> None:
    arguments, order = task_action("9", -1)
    old = next(i for i in order["items"] if i["item_id"] == arguments["item_ids"][0])
    new = retail_world["products"][old["product_id"]]["variants"][arguments["new_item_ids"][0]]

    result = call(conn, "exchange_delivered_order_items", **arguments)

    assert result["exchange_items"] == arguments["item_ids"]
    assert result["exchange_new_items"] == arguments["new_item_ids"]
    assert result["exchange_payment_method_id"] == arguments["payment_method_id"]
    assert result["exchange_price_difference"] == round(new["price"] - old["price"], 2)
    assert [i["item_id"] for i in result["items"]] == [i["item_id"] for i in order["items"]]


@pytest.fixture
def delivered(conn: psycopg.Connection, load_world: Load, retail_world: taubench.World) -> dict[str, Any]:
    """A delivered order (of a user who also has a gift card and another user's card at hand), loaded."""
    order = next(
        o
        for o in retail_world["orders"].values()
        if o["status"] == "delivered"
        and any(m.startswith("gift_card") for m in retail_world["users"][o["user_id"]]["payment_methods"])
        and not o["payment_history"][0]["payment_method_id"].startswith("gift_card")
    )
    other = next(u for u in retail_world["users"] if u != order["user_id"])
    load_world(world_of(retail_world, order["user_id"], other))
    return {"order": order, "user": retail_world["users"][order["user_id"]], "other": retail_world["users"][other]}


def test_only_pending_orders_are_cancelled_or_modified(conn: psycopg.Connection, delivered: dict[str, Any]) -> None:
    order_id = delivered["order"]["order_id"]
    with pytest.raises(RuleViolationError, match=rf"order {order_id} is 'delivered'; only 'pending' orders can be"):
        call(conn, "cancel_pending_order", order_id=order_id, reason="no longer needed")
    address = {k: "x" for k in ("address1", "address2", "city", "country", "state")}
    with pytest.raises(RuleViolationError, match="only 'pending' orders can be modified"):
        call(conn, "modify_pending_order_address", order_id=order_id, zip="12345", **address)


def test_only_delivered_orders_are_returned(
    conn: psycopg.Connection, load_world: Load, retail_world: taubench.World
) -> None:
    order = next(o for o in retail_world["orders"].values() if o["status"] == "pending")
    load_world(world_of(retail_world, order["user_id"]))
    with pytest.raises(RuleViolationError, match="only 'delivered' orders can be returned"):
        call(
            conn,
            "return_delivered_order_items",
            order_id=order["order_id"],
            item_ids=[order["items"][0]["item_id"]],
            payment_method_id=order["payment_history"][0]["payment_method_id"],
        )


def test_refunds_go_to_the_original_method_or_a_gift_card(conn: psycopg.Connection, delivered: dict[str, Any]) -> None:
    order, user = delivered["order"], delivered["user"]
    item = [order["items"][0]["item_id"]]
    original = order["payment_history"][0]["payment_method_id"]
    other_method = next(iter(delivered["other"]["payment_methods"]))
    with pytest.raises(RuleViolationError, match=f"{other_method!r} does not belong to user"):
        call(
            conn,
            "return_delivered_order_items",
            order_id=order["order_id"],
            item_ids=item,
            payment_method_id=other_method,
        )
    not_original = [m for m, v in user["payment_methods"].items() if m != original and v["source"] != "gift_card"]
    for method in not_original:
        with pytest.raises(RuleViolationError, match="original payment method"):
            call(
                conn,
                "return_delivered_order_items",
                order_id=order["order_id"],
                item_ids=item,
                payment_method_id=method,
            )
    gift_card = next(m for m in user["payment_methods"] if m.startswith("gift_card"))
    result = call(
        conn, "return_delivered_order_items", order_id=order["order_id"], item_ids=item, payment_method_id=gift_card
    )
    assert result["status"] == "return requested" and result["return_payment_method_id"] == gift_card


def test_exchanges_keep_the_product_and_need_available_items(
    conn: psycopg.Connection, delivered: dict[str, Any], retail_world: taubench.World
) -> None:
    order = delivered["order"]
    item = order["items"][0]
    method = order["payment_history"][0]["payment_method_id"]
    variants = retail_world["products"][item["product_id"]]["variants"]
    foreign = next(
        i for p in retail_world["products"].values() if p["product_id"] != item["product_id"] for i in p["variants"]
    )
    exchange = {"order_id": order["order_id"], "item_ids": [item["item_id"]], "payment_method_id": method}
    with pytest.raises(RuleViolationError, match=f"item {foreign} is not a variant of product {item['product_id']}"):
        call(conn, "exchange_delivered_order_items", new_item_ids=[foreign], **exchange)
    with pytest.raises(RuleViolationError, match="is the item itself"):
        call(conn, "exchange_delivered_order_items", new_item_ids=[item["item_id"]], **exchange)
    unavailable = [i for i, v in variants.items() if not v["available"]]
    for new_id in unavailable[:1]:
        with pytest.raises(RuleViolationError, match=f"item {new_id} is not available"):
            call(conn, "exchange_delivered_order_items", new_item_ids=[new_id], **exchange)
    with pytest.raises(RuleViolationError, match=f"item {item['item_id']} appears 9x in the request"):
        call(
            conn,
            "exchange_delivered_order_items",
            **{**exchange, "item_ids": [item["item_id"]] * 9},
            new_item_ids=[foreign] * 9,
        )
    version, stored, event_id = entity(conn, "order", order["order_id"])
    assert (stored["status"], version[1], event_id) == ("delivered", 0, f"seed:{order['order_id']}")


def test_gift_card_balance_must_cover_the_difference(
    conn: psycopg.Connection, load_world: Load, retail_world: taubench.World
) -> None:
    cases = (
        (o, item, new_id, card)
        for o in retail_world["orders"].values()
        if o["status"] == "pending"
        for item in o["items"]
        for new_id, variant in retail_world["products"][item["product_id"]]["variants"].items()
        if variant["available"] and new_id != item["item_id"]
        for card, method in retail_world["users"][o["user_id"]]["payment_methods"].items()
        if method["source"] == "gift_card" and method["balance"] < variant["price"] - item["price"]
    )
    order, item, new_id, card = next(cases)
    load_world(world_of(retail_world, order["user_id"]))
    with pytest.raises(RuleViolationError, match=f"gift card {card} has balance"):
        call(
            conn,
            "modify_pending_order_items",
            order_id=order["order_id"],
            item_ids=[item["item_id"]],
            new_item_ids=[new_id],
            payment_method_id=card,
        )


def test_a_customer_context_confines_tools_to_that_customer(
    conn: psycopg.Connection, delivered: dict[str, Any]
) -> None:
    mine = ToolContext(actor="user", customer_id=delivered["other"]["user_id"])
    with pytest.raises(CrossCustomerAccessError, match="belongs to another customer"):
        call(conn, "get_order_details", mine, order_id=delivered["order"]["order_id"])
    with pytest.raises(CrossCustomerAccessError):
        call(conn, "get_user_details", mine, user_id=delivered["user"]["user_id"])
    with pytest.raises(CrossCustomerAccessError):
        call(conn, "find_user_id_by_email", mine, email=delivered["user"]["email"])
    assert call(conn, "get_user_details", mine, user_id=delivered["other"]["user_id"])["orders"]


def test_look_ups_find_users_items_and_report_what_is_missing(
    conn: psycopg.Connection, delivered: dict[str, Any]
) -> None:
    user = delivered["user"]
    assert call(conn, "find_user_id_by_email", email=user["email"].upper())["user_id"] == user["user_id"]
    name = user["name"]
    found = call(
        conn,
        "find_user_id_by_name_zip",
        first_name=name["first_name"].lower(),
        last_name=name["last_name"],
        zip=user["address"]["zip"],
    )
    assert found["user_id"] == user["user_id"]
    details = call(conn, "get_user_details", user_id=user["user_id"])
    assert sorted(details["orders"]) == sorted(user["orders"]) and details["payment_methods"] == user["payment_methods"]
    item = delivered["order"]["items"][0]
    assert call(conn, "get_item_details", item_id=item["item_id"])["product_id"] == item["product_id"]
    assert len(call(conn, "list_all_product_types")["product_types"]) == 50
    assert call(conn, "calculate", expression="155.33 - 147.05 + 268.77 - 235.13") == {"result": "41.92"}
    with pytest.raises(NotFoundError, match="order '#W0000000' not found"):
        call(conn, "get_order_details", order_id="#W0000000")
    with pytest.raises(InvalidToolArgumentsError, match="order_id: '#9502126' does not match"):
        call(conn, "get_order_details", order_id="#9502126")
    with pytest.raises(InvalidToolArgumentsError, match="cannot be calculated"):
        call(conn, "calculate", expression="1 / 0")
