"""The intent router on real support text: Bitext intents and entities, τ²-bench customers, the reads it proposes."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streamdesk.agent import tools
from streamdesk.agent.intents import model_tools
from streamdesk.agent.models import ToolCall
from streamdesk.domains.retail import intents

BITEXT = Path("support") / "bitext_customer_support_training_4514.csv"
ROUTED: dict[str, set[str]] = {
    "cancel_order": {"cancel"},
    "get_refund": {"refund", "return"},
    "track_order": {"track"},
    "contact_human_agent": {"human"},
    "change_shipping_address": {"address"},
}
"""Bitext intents with a tool of their own, and the router intents that reach it."""
READS = {tool.name for tool in tools.default_registry() if tool.kind == "read"} | {"search_knowledge"}


@pytest.fixture(scope="module")
def bitext(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / BITEXT).open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_bitext_intents_route_to_their_tool(bitext: list[dict[str, str]]) -> None:
    hits, totals = Counter[str](), Counter[str]()
    for row in bitext:
        if row["intent"] in ROUTED:
            totals[row["intent"]] += 1
            found = intents.features(row["instruction"])
            hits[row["intent"]] += found.primary in ROUTED[row["intent"]]
            assert found.primary is None or intents.INTENT_TOOL[found.primary] in READS | set(
                intents.INTENT_TOOL.values()
            )
    accuracy = {intent: round(hits[intent] / totals[intent], 3) for intent in totals}
    overall = sum(hits.values()) / sum(totals.values())
    print(f"\nrouting accuracy on {sum(totals.values())} Bitext rows: {overall:.3f} {accuracy}")
    assert overall >= 0.97 and min(accuracy.values()) >= 0.95


def test_bitext_tool_per_instruction(bitext: list[dict[str, str]]) -> None:
    wanted = {
        "cancel_order": "cancel_pending_order",
        "get_refund": "return_delivered_order_items",
        "track_order": "get_order_details",
        "contact_human_agent": "transfer_to_human_agents",
    }
    rows = [row for row in bitext if row["intent"] in wanted]
    routed = [intents.features(row["instruction"]).primary for row in rows]
    correct = sum(
        intent is not None and intents.INTENT_TOOL[intent] == wanted[row["intent"]]
        for row, intent in zip(rows, routed, strict=True)
    )
    assert correct / len(rows) >= 0.97


def test_bitext_order_numbers_are_extracted(bitext: list[dict[str, str]]) -> None:
    rows = [row for row in bitext if row["entity_type"] == "order_id"]
    exact = truncated = 0
    for row in rows:
        numbers = intents.features(row["instruction"]).order_numbers
        value = row["entity_value"].lstrip("0")
        if any(number.lstrip("0") == value for number in numbers):
            exact += 1
        elif any(number.lstrip("0").startswith(value) for number in numbers):
            truncated += 1  # the dataset annotates '370795561790' as '3707955617' in some rows
    print(f"\norder ids: {exact}/{len(rows)} exact, {truncated} more where the annotation is truncated")
    assert exact / len(rows) >= 0.94 and (exact + truncated) / len(rows) >= 0.99


def test_tau2_customers_are_found_by_name_and_zip_or_email(retail_tasks: dict[str, dict[str, Any]]) -> None:
    misses = []
    for task_id, task in retail_tasks.items():
        instructions = task["user_scenario"]["instructions"]
        found = intents.features(f"{instructions['reason_for_call']}\n{instructions['known_info']}")
        for action in (task.get("evaluation_criteria") or {}).get("actions") or []:
            arguments = action["arguments"]
            if action["name"] == "find_user_id_by_name_zip":
                ok = (found.first_name, found.last_name) == (arguments["first_name"], arguments["last_name"])
                if not ok or arguments["zip"] not in found.zip_codes:
                    misses.append(task_id)
            elif action["name"] == "find_user_id_by_email" and arguments["email"] not in found.emails:
                misses.append(task_id)
    # tasks 67 and 68 expect a first attempt with a zip the customer never states (98178 vs 98187)
    assert sorted(set(misses)) == ["67", "68"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Please cancel #W2378156, I ordered it by mistake", ("cancel",)),
        ("I want to exchange the keyboard and then return the lamp", ("exchange", "return")),
        ("What is the status of my refund?", ("track",)),
        ("I want the tracking number of the order, and return all items but the pet bed", ("track", "return")),
        ("i need to talk to a human NOW", ("human",)),
        ("I want to cancdling purchase 00004587345", ("cancel",)),
        ("How much is the cancellation fee?", ()),
        ("Please ship to my new address in Phoenix", ("address",)),
        ("Could you tell me about your loyalty programme", ()),
    ],
)
def test_intents_in_text_order(text: str, expected: tuple[str, ...]) -> None:
    assert intents.features(text).intents == expected


def test_features_of_a_ticket() -> None:
    found = intents.features(
        "Hi, I'm Yusuf Rossi (zip code 19122), mail yusuf.rossi7301@example.com. Order W2378156 and #W1234567 "
        "arrived broken; I paid $12345.67 - please return them."
    )
    assert found.order_ids == ("#W2378156", "#W1234567")
    assert (found.first_name, found.last_name, found.zip_codes) == ("Yusuf", "Rossi", ("19122",))
    assert found.emails == ("yusuf.rossi7301@example.com",) and found.intents == ("return",)
    assert found.wants_write and found.to_json()["has_email"]


def test_a_user_id_in_the_text_gives_the_name() -> None:
    found = intents.features("You are mei_kovacs_8020 in zipcode 28236.")
    assert (found.first_name, found.last_name, found.zip_codes) == ("Mei", "Kovacs", ("28236",))


def walk(found: intents.TicketFeatures, results: dict[str, dict[str, Any] | None]) -> list[ToolCall]:
    """Every call the router proposes when each call returns `results[tool]` (None: an error)."""
    history: list[tuple[ToolCall, dict[str, Any] | None]] = []
    while (call := intents.next_call(found, history=history)) is not None:
        history.append((call, results.get(call.tool)))
    return [call for call, _ in history]


def test_the_router_authenticates_then_reads_the_user_orders_and_knowledge() -> None:
    found = intents.features(
        "Cancel #W2378156 please. My email is yusuf.rossi7301@example.com, zip 19122, I am Yusuf Rossi"
    )
    calls = walk(found, {"find_user_id_by_email": {"user_id": "yusuf_rossi_9620"}})
    assert [call.tool for call in calls] == [
        "find_user_id_by_email",
        "get_user_details",
        "get_order_details",
        "search_knowledge",
    ]
    assert calls[1].arguments == {"user_id": "yusuf_rossi_9620"}
    assert {call.tool for call in calls} <= READS


def test_a_verified_customer_is_read_when_the_ticket_names_nobody() -> None:
    found = intents.features("Please cancel #W1234567, I ordered it by mistake.")
    first = intents.next_call(found, history=[], customer_id="ann_lee_1")
    assert first == ToolCall(tool="get_user_details", arguments={"user_id": "ann_lee_1"})
    named = intents.features("Cancel #W1234567. My email is ann@example.com")
    assert intents.next_call(named, history=[], customer_id="ann_lee_1") == ToolCall(
        tool="find_user_id_by_email", arguments={"email": "ann@example.com"}
    )
    failed = [(ToolCall(tool="find_user_id_by_email", arguments={"email": "ann@example.com"}), None)]
    assert intents.next_call(named, history=failed, customer_id="ann_lee_1") == first


def test_a_failed_lookup_tries_the_next_zip_then_moves_on() -> None:
    found = intents.features("I moved from Florida (32169) to Phoenix (85033). I am Fatima Taylor.")
    calls = walk(found, {})
    assert [(c.tool, c.arguments.get("zip")) for c in calls] == [
        ("find_user_id_by_name_zip", "32169"),
        ("find_user_id_by_name_zip", "85033"),
        ("search_knowledge", None),
    ]


USER = {"user_id": "ann_lee_1", "payment_methods": {}, "orders": ["#W1111111", "#W2222222"]}
LAMP_ORDER = {
    "order_id": "#W1111111",
    "status": "delivered",
    "items": [
        {"name": "Desk Lamp", "product_id": "p-lamp", "item_id": "i1"},
        {"name": "Water Bottle", "product_id": "p-bottle", "item_id": "i2"},
    ],
}


def test_without_named_orders_the_router_reads_the_users_orders_and_named_products() -> None:
    found = intents.features("I want to exchange the desk lamps for brighter ones. I am Ann Lee, zip 12345.")
    calls = walk(
        found,
        {
            "find_user_id_by_name_zip": {"user_id": "ann_lee_1"},
            "get_user_details": USER,
            "get_order_details": LAMP_ORDER,
        },
    )
    assert [(c.tool, dict(c.arguments)) for c in calls][1:] == [
        ("get_user_details", {"user_id": "ann_lee_1"}),
        ("get_order_details", {"order_id": "#W1111111"}),
        ("get_order_details", {"order_id": "#W2222222"}),
        ("get_product_details", {"product_id": "p-lamp"}),
        ("search_knowledge", {"query": found.query}),
    ]


@pytest.mark.parametrize(
    ("text", "orders", "products"),
    [
        ("I am Ann Lee, zip 12345. Please connect me to a human agent.", [], False),
        ("Return the water bottle. I am Ann Lee, zip 12345.", ["#W1111111", "#W2222222"], False),
        ("Cancel #W2222222 please. I am Ann Lee, zip 12345.", ["#W2222222"], False),
        ("Swap my water bottle for a bigger one. I am Ann Lee, zip 12345.", ["#W1111111", "#W2222222"], True),
    ],
)
def test_which_orders_and_products_the_router_reads(text: str, orders: list[str], products: bool) -> None:
    found = intents.features(text)
    calls = walk(
        found,
        {
            "find_user_id_by_name_zip": {"user_id": "ann_lee_1"},
            "get_user_details": USER,
            "get_order_details": LAMP_ORDER,
        },
    )
    assert [c.arguments["order_id"] for c in calls if c.tool == "get_order_details"] == orders
    assert [c.arguments["product_id"] for c in calls if c.tool == "get_product_details"] == (
        ["p-bottle"] if products else []
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the Desk Lamp broke", ["p-lamp"]),
        ("both desk lamps and my water  bottle", ["p-lamp", "p-bottle"]),
        ("a lampshade", []),
        ("desk", []),
    ],
)
def test_named_products_match_whole_item_names(text: str, expected: list[str]) -> None:
    assert intents.named_products(text, [LAMP_ORDER]) == expected


def test_the_router_never_proposes_a_write(bitext: list[dict[str, str]]) -> None:
    for row in bitext[::7]:
        found = intents.features(row["instruction"] + " I am Ann Lee, zip 12345, #W1234567, ann@example.com")
        assert {call.tool for call in walk(found, {"find_user_id_by_email": {"user_id": "ann_lee_1"}})} <= READS


def test_model_tools_follow_the_intents() -> None:
    permitted = [*tools.default_registry().names(), "search_knowledge"]
    cancel = model_tools(intents.features("cancel my order"), permitted=permitted)
    assert "cancel_pending_order" in cancel and "exchange_delivered_order_items" not in cancel
    assert model_tools(intents.features("hello there"), permitted=permitted) == [
        name for name in permitted if name != "calculate"
    ]
    writes = {tool.name for tool in tools.default_registry() if tool.kind == "write"}
    unclear = model_tools(intents.features("how much did I pay?"), permitted=permitted, writes=writes)
    assert "cancel_pending_order" not in unclear and "return_delivered_order_items" not in unclear
    assert "transfer_to_human_agents" in unclear and "get_order_details" in unclear
    both = intents.features("I want to return the chair, or rather exchange it")
    single = model_tools(both, permitted=permitted, writes=writes, single_write=True)
    assert both.primary == "exchange" and "exchange_delivered_order_items" in single
    assert "return_delivered_order_items" not in single and "get_product_details" in single
    assert "return_delivered_order_items" in model_tools(both, permitted=permitted, writes=writes)
    assert "cancel_pending_order" not in model_tools(intents.features("cancel it"), permitted=["get_order_details"])


def test_spelling_correction_and_edit_distance() -> None:
    assert intents.correct_spelling("cancdling tocancel adfress Order") == "canceling to cancel address Order"
    assert intents.edit_distance("acnceling", "canceling") == 1 and intents.edit_distance("older", "purchase") == 3


@pytest.mark.parametrize(
    ("text", "conditional", "confirm"),
    [
        ("Please cancel order #W1234567.", (), False),
        ("Please cancel order #W1234567 if possible.", (), False),
        ("Could you cancel it, if you could?", (), False),
        ("Cancel my order. If you need anything else, let me know.", (), False),
        ("If it has not shipped, cancel it.", ("track", "cancel"), True),
        ("Cancel the lamp, but if you cannot, return it instead.", ("cancel", "return"), True),
        ("Exchange the bottle.\nIf the agent asks again, return the bottle.", ("return",), True),
        ("I want to know whether I can return the chair", ("return",), True),
        ("Unless it is cheaper elsewhere, exchange it", ("exchange",), True),
        ("If nobody can help, I want to speak to a human", ("human",), False),
        ("Where is my order? If it has shipped, what is the tracking number?", ("track",), False),
    ],
)
def test_conditional_changes_need_confirmation(text: str, conditional: tuple[str, ...], confirm: bool) -> None:
    found = intents.features(text)
    assert found.conditional == conditional
    assert found.needs_confirmation is confirm


def test_a_conditional_change_is_offered_no_customer_data_write() -> None:
    permitted = [*tools.default_registry().names(), "search_knowledge"]
    writes = {tool.name for tool in tools.default_registry() if tool.kind == "write"}
    found = intents.features("I want to exchange the lamp. If that is not possible, return it instead.")
    offered = model_tools(found, permitted=permitted, writes=writes, single_write=True)
    assert not {"exchange_delivered_order_items", "return_delivered_order_items"} & set(offered)
    assert "get_product_details" in offered and "transfer_to_human_agents" not in offered
    plain = model_tools(intents.features("I want to exchange the lamp."), permitted=permitted, writes=writes)
    assert "exchange_delivered_order_items" in plain


def test_a_question_about_how_things_work_asks_for_no_change() -> None:
    question = intents.features(
        "If an order gets cancelled, how long does it take for the refund to show up on my card?"
    )
    assert question.intents == () and not question.needs_confirmation
    request = intents.features("How long does a refund take? If it has not shipped, cancel order #W1234567.")
    assert "cancel" in request.intents and request.needs_confirmation
