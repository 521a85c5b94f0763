"""The retail write plan on the real stack: explicit requests carried out by the rules with correct arguments.

Each ticket runs through the real loop (embedded PostgreSQL, the τ²-bench world, the real SmolLM2 backend,
which takes no step once the rules have carried the request out); an evaluation supervisor approves at once.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from streamdesk.agent import answer_config, backends, loop, tools
from streamdesk.agent.answers import Ticket, TraceStep
from streamdesk.agent.models import ToolCall
from streamdesk.domains.retail import intents, plans
from streamdesk.identity.models import Principal, Role, agent_for_customer

SUPERVISOR = Principal(kind="user", id="sup-1", roles=frozenset({Role.SUPERVISOR}))
SETTINGS = answer_config.AnswerSettings(max_new_tokens=160, reply_max_chars=80, knowledge_k=0)
FATIMA = ("fatima_anderson_2157", "fatima.anderson1447@example.com")
"""Pending orders #W2974929 (a skateboard) and #W4514908, address 334 Broadway, Suite 326, Jacksonville FL 32100."""
YUSUF = ("yusuf_rossi_9620", "yusuf.rossi7301@example.com")
"""Delivered order #W2378156 (headphones, a vacuum cleaner, a keyboard, a thermostat, a watch), a mastercard."""


def answer(conn: psycopg.Connection, backend: backends.TransformersBackend, customer: str, body: str) -> Any:
    ticket = Ticket(source="zendesk", ticket_id="T-1", event_id=f"zendesk:T-1:{uuid.uuid4().hex[:8]}", body=body)
    return loop.answer_ticket(
        conn, ticket=ticket, principal=agent_for_customer(customer), backend=backend,
        registry=tools.default_registry(), max_steps=1, settings=SETTINGS, approver=SUPERVISOR,
    )  # fmt: skip


def writes(trace: list[TraceStep]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(s.tool, s.source, s.arguments) for s in trace if s.outcome in ("executed", "pending_approval")]


@pytest.mark.slow
def test_an_explicit_cancel_is_carried_out_with_the_reason_the_ticket_gives(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    result = answer(
        world, backend, FATIMA[0], f"Please cancel order #W2974929, I ordered it by mistake. I confirm. {FATIMA[1]}"
    )
    arguments = {"order_id": "#W2974929", "reason": "ordered by mistake"}
    assert writes(result.answer.trace) == [("cancel_pending_order", "router", arguments)]
    assert not result.model_steps  # the rules carried it out: the answer states it from the tool result
    assert "Order #W2974929 is being cancelled. We are refunding $182.03 to your PayPal account." in result.answer.text


@pytest.mark.slow
def test_an_explicit_address_change_gets_the_parsed_address(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    body = f"Please ship order #W2974929 to 445 Maple Drive, Suite 394, Fort Worth, Texas 76165. I confirm. {FATIMA[1]}"
    result = answer(world, backend, FATIMA[0], body)
    address = {"address1": "445 Maple Drive", "address2": "Suite 394", "city": "Fort Worth", "state": "TX",
               "zip": "76165", "country": "USA"}  # fmt: skip
    assert writes(result.answer.trace) == [
        ("modify_pending_order_address", "router", {"order_id": "#W2974929", **address})
    ]
    assert (
        "Order #W2974929 is being changed to ship to 445 Maple Drive, Suite 394, Fort Worth, TX 76165, USA."
        in result.answer.text
    )


@pytest.mark.slow
def test_a_unit_alone_changes_only_address2_of_the_current_address(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    body = "I am Fatima Anderson, zip 32100. Please deliver #W4514908 to Suite 641 instead. I confirm."
    result = answer(world, backend, FATIMA[0], body)
    address = {"address1": "334 Broadway", "address2": "Suite 641", "city": "Jacksonville", "state": "FL",
               "zip": "32100", "country": "USA"}  # fmt: skip
    assert writes(result.answer.trace) == [
        ("modify_pending_order_address", "router", {"order_id": "#W4514908", **address})
    ]


@pytest.mark.slow
def test_a_return_names_its_items_and_refunds_the_original_payment_method(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    body = f"I want to return the headphones and the smart watch from order #W2378156. I confirm. {YUSUF[1]}"
    result = answer(world, backend, YUSUF[0], body)
    arguments = {"order_id": "#W2378156", "item_ids": ["4202497723", "9408160950"],
                 "payment_method_id": "credit_card_9513926"}  # fmt: skip
    assert writes(result.answer.trace) == [("return_delivered_order_items", "router", arguments)]
    assert "The return of the Headphones and the Smart Watch from order #W2378156 is requested." in result.answer.text
    assert (
        "goes to your Mastercard card ending 2478." in result.answer.text and "credit_card_" not in result.answer.text
    )


@pytest.mark.slow
def test_an_exchange_picks_the_available_variant_with_the_options_asked_for(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    body = (
        f"Order #W2378156: please exchange the smart thermostat for one compatible with Google instead of "
        f"Apple HomeKit. I confirm. {YUSUF[1]}"
    )
    result = answer(world, backend, YUSUF[0], body)
    arguments = {"order_id": "#W2378156", "item_ids": ["4983901480"], "new_item_ids": ["7747408585"],
                 "payment_method_id": "credit_card_9513926"}  # fmt: skip
    assert writes(result.answer.trace) == [("exchange_delivered_order_items", "router", arguments)]


@pytest.mark.slow
def test_a_customer_who_asks_for_a_person_is_transferred(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    result = answer(world, backend, FATIMA[0], f"I want to talk to a real person about my order. {FATIMA[1]}")
    (handoff,) = writes(result.answer.trace)
    assert handoff[:2] == ("transfer_to_human_agents", "router")
    assert handoff[2]["summary"].startswith("The customer asks to speak to a person.")
    assert result.answer.status == "escalated"


@pytest.mark.slow
def test_a_change_asked_for_under_a_condition_is_held(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    body = f"If order #W2974929 has not shipped, cancel it because I ordered it by mistake. {FATIMA[1]}"
    result = answer(world, backend, FATIMA[0], body)
    assert not [step for step in writes(result.answer.trace) if step[1] == "router"]
    held = [(s.tool, s.arguments) for s in result.answer.trace if s.outcome == "held"]
    assert held == [("cancel_pending_order", {"order_id": "#W2974929", "reason": "ordered by mistake"})]
    assert "Nothing has been changed yet" in result.answer.text


@pytest.mark.slow
def test_a_change_not_confirmed_is_listed_and_held(
    world: psycopg.Connection, backend: backends.TransformersBackend
) -> None:
    result = answer(world, backend, FATIMA[0], f"Please cancel order #W2974929, I ordered it by mistake. {FATIMA[1]}")
    assert not writes(result.answer.trace) and result.held == [
        ToolCall(tool="cancel_pending_order", arguments={"order_id": "#W2974929", "reason": "ordered by mistake"})
    ]
    assert 'Reply "yes" to confirm' in result.answer.text


# --- the plan's pieces -----------------------------------------------------------------------------------------


def test_free_text_addresses_are_parsed_with_usaddress() -> None:
    assert plans.parse_address("I moved to 12 Oak Street, Apt 5, Austin TX 78701. Thanks!") == {
        "address1": "12 Oak Street", "address2": "Apt 5", "city": "Austin", "state": "TX", "zip": "78701",
    }  # fmt: skip
    assert plans.parse_address("deliver it to Suite 641 instead") == {"address2": "Suite 641"}
    assert plans.parse_address("I live in zip code 32100 and my order is late.") == {}


def test_a_new_street_replaces_the_old_unit_and_missing_parts_come_from_the_current_address() -> None:
    current = {"address1": "1 A St", "address2": "Suite 1", "city": "Reno", "state": "NV", "zip": "89501",
               "country": "USA"}  # fmt: skip
    assert plans.completed({"address1": "9 B Ave"}, current)["address2"] == ""
    assert plans.completed({"address2": "Suite 9"}, current) == {**current, "address2": "Suite 9"}


def test_payment_methods_are_matched_by_what_the_ticket_names() -> None:
    user = {"payment_methods": {
        "paypal_1": {"source": "paypal"}, "gift_card_2": {"source": "gift_card", "balance": 10},
        "credit_card_3": {"source": "credit_card", "brand": "visa", "last_four": "1234"},
        "credit_card_4": {"source": "credit_card", "brand": "amex", "last_four": "9876"},
    }}  # fmt: skip
    assert plans.payment_method("pay with PayPal please", user) == "paypal_1"
    assert plans.payment_method("use my gift card", user) == "gift_card_2"
    assert plans.payment_method("the credit card ending 1234", user) == "credit_card_3"
    assert plans.payment_method("my credit card", user) is None  # two cards: unclear


def test_an_unclear_variant_request_picks_nothing() -> None:
    item = {"item_id": "1", "options": {"color": "red", "size": "M"}}
    product = {"variants": {
        "2": {"available": True, "options": {"color": "blue", "size": "M"}},
        "3": {"available": True, "options": {"color": "blue", "size": "L"}},
        "4": {"available": False, "options": {"color": "green", "size": "M"}},
    }}  # fmt: skip
    assert plans.wanted_variant("I want it in blue", item, product) == "2"
    assert plans.wanted_variant("I want it in green", item, product) is None  # not available
    assert plans.wanted_variant("I want another one", item, product) is None


def test_an_address_on_file_is_found_by_its_place_or_as_the_default() -> None:
    home = {"address1": "1 A St", "address2": "", "city": "Charlotte", "state": "NC", "zip": "28243", "country": "USA"}
    away = {"address1": "9 B Ave", "address2": "Suite 2", "city": "New York", "state": "NY", "zip": "10001",
            "country": "USA"}  # fmt: skip
    world = plans.World(
        user_id="u_1", user={"user_id": "u_1", "address": home},
        orders={"#W1": {"order_id": "#W1", "status": "pending", "address": away, "items": []}}, products={},
    )  # fmt: skip
    assert plans.known_address("please change my order to my NYC address", world) == ("#W1", away)
    assert plans.known_address("send it to my default address instead", world) == ("user", home)
    assert plans.known_address("send it to the Boston address", world) is None


def test_the_plan_is_made_from_what_the_reads_found_not_from_what_its_writes_changed() -> None:
    def order(order_id: str, *names: str) -> dict[str, Any]:
        items = [{"item_id": f"{order_id}-{n}", "name": name, "product_id": name} for n, name in enumerate(names)]
        payments = [{"transaction_type": "payment", "payment_method_id": "paypal_1"}]
        return {"order_id": order_id, "status": "delivered", "items": items, "payment_history": payments}

    first, second = order("#W1", "Kettle", "Pet Bed"), order("#W2", "Skateboard")
    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), {"user_id": "u_1", "payment_methods": {}}),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W1"}), first),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W2"}), second),
    ]
    found = intents.features("Please return everything except the pet bed.")
    call = plans.next_write(found, history=reads)
    assert call is not None and call.arguments == {
        "order_id": "#W1",
        "item_ids": ["#W1-0"],
        "payment_method_id": "paypal_1",
    }
    after = [*reads, (call, {**first, "status": "return requested"})]
    assert plans.next_write(found, history=after) is None


def test_a_return_that_names_an_order_returns_only_the_items_the_ticket_names() -> None:
    items = [{"item_id": f"i{n}", "name": name, "product_id": name} for n, name in enumerate(("Garden Hose", "Kettle"))]
    payments = [{"transaction_type": "payment", "payment_method_id": "gift_card_1"}]
    order = {"order_id": "#W7000001", "status": "delivered", "items": items, "payment_history": payments}
    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), {"user_id": "u_1", "payment_methods": {}}),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W7000001"}), order),
    ]
    named = intents.features(
        "The garden hose from order #W7000001 arrived damaged. I would like to send it back and get my money back."
    )
    call = plans.next_write(named, history=reads)
    assert call is not None and call.arguments["item_ids"] == ["i0"]
    unnamed = intents.features("Order #W7000001 arrived late. I want a refund, please.")
    assert plans.next_write(unnamed, history=reads) is None


def test_a_new_default_address_moves_no_order_the_ticket_does_not_ask_about() -> None:
    user = {
        "user_id": "u_1",
        "payment_methods": {},
        "address": {"address1": "1 Oak St", "city": "Austin", "state": "TX", "zip": "78701", "country": "USA"},
    }
    order = {"order_id": "#W7000001", "status": "pending", "items": [], "address": user["address"]}
    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), user),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W7000001"}), order),
    ]
    account = intents.features(
        "I moved house. Please change the default address on my account to 12 Elm Street, Apt 4, Springfield, "
        "IL 62704, USA. I confirm the change."
    )
    call = plans.next_write(account, history=reads)
    assert call is not None and call.tool == "modify_user_address"
    assert plans.next_write(account, history=[*reads, (call, user)]) is None
    both = intents.features(
        "Please change the default address on my account and my order to 12 Elm Street, Springfield, IL 62704."
    )
    first = plans.next_write(both, history=reads)
    assert first is not None and first.tool == "modify_user_address"
    second = plans.next_write(both, history=[*reads, (first, user)])
    assert second is not None and second.tool == "modify_pending_order_address"


def _delivered(order_id: str, *names: str) -> dict[str, Any]:
    items = [{"item_id": f"{order_id}-{n}", "name": name, "product_id": name} for n, name in enumerate(names)]
    payments = [{"transaction_type": "payment", "payment_method_id": "gift_card_1"}]
    return {"order_id": order_id, "status": "delivered", "items": items, "payment_history": payments}


USER = {"user_id": "u_1", "payment_methods": {"gift_card_1": {"source": "gift_card"}, "paypal_2": {"source": "paypal"}}}


def test_a_later_message_narrows_or_repays_the_held_change_or_asks_for_another() -> None:
    facts = [USER, _delivered("#W1", "Water Bottle", "Desk Lamp")]
    arguments = {"order_id": "#W1", "item_ids": ["#W1-0", "#W1-1"], "new_item_ids": ["b2", "l2"]}
    swap = ToolCall(tool="exchange_delivered_order_items", arguments={**arguments, "payment_method_id": "gift_card_1"})
    lamp = plans.revise_held([swap], "Yes, but only exchange the desk lamp.", facts=facts)
    assert lamp is not None and [c.arguments["item_ids"] for c in lamp] == [["#W1-1"]]
    assert [c.arguments["new_item_ids"] for c in lamp] == [["l2"]]
    paypal = plans.revise_held([swap], "I changed my mind: pay with PayPal, and only the lamp.", facts=facts)
    assert paypal is not None and paypal[0].arguments["payment_method_id"] == "paypal_2"
    assert plans.revise_held([swap], "Yes, I confirm.", facts=facts) == [swap]
    # a change the held one does not carry out: the request is planned again
    assert plans.revise_held([swap], "Do not exchange anything, return the water bottle instead.", facts=facts) is None
    assert plans.revision("Do not exchange anything, return the bottle instead.", "Exchange the bottle.").intents == (
        "return",
    )


def test_a_delivered_order_gets_the_return_or_the_exchange_it_prefers() -> None:
    order = _delivered("#W1", "Garden Hose", "Hiking Boots")
    boots = {"product_id": "Hiking Boots", "variants": {
        "#W1-1": {"options": {"material": "leather"}, "available": True, "price": 10},
        "b2": {"options": {"material": "suede"}, "available": True, "price": 12},
    }}  # fmt: skip
    order["items"][1]["options"] = {"material": "leather"}
    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), USER),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W1"}), order),
        (ToolCall(tool="get_product_details", arguments={"product_id": "Hiking Boots"}), boots),
    ]
    text = "I want to return the garden hose and exchange the hiking boots for the suede one."
    assert [c.tool for c in plans.planned_writes(intents.features(text), reads)] == []
    preferred = intents.features(f"{text} If you can only do one, I prefer the exchange.")
    assert [c.tool for c in plans.planned_writes(preferred, reads)] == ["exchange_delivered_order_items"]


def test_cancelling_by_an_item_cancels_only_an_order_it_is_all_of() -> None:
    def pending(order_id: str, *names: str) -> dict[str, Any]:
        return {**_delivered(order_id, *names), "status": "pending"}

    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), USER),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W1"}), pending("#W1", "Air Purifier", "Lamp")),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W2"}), pending("#W2", "Grill")),
    ]
    assert list(plans.planned_writes(intents.features("Please cancel the air purifier."), reads)) == []
    grill = list(plans.planned_writes(intents.features("Please cancel the grill."), reads))
    assert [c.arguments["order_id"] for c in grill] == ["#W2"]
    whole = intents.features("I ordered the air purifier by mistake. Cancel the whole order.")
    assert [c.arguments["order_id"] for c in plans.planned_writes(whole, reads)] == ["#W1"]


def test_a_whole_order_mentioned_under_a_condition_or_a_negation_cancels_nothing() -> None:
    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), USER),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W1"}),
         {**_delivered("#W1", "Garden Hose", "Lamp"), "status": "pending"}),
    ]  # fmt: skip
    guarded = "Cancel the garden hose (if this would require cancelling the entire order, please do not do it)."
    assert list(plans.planned_writes(intents.features(guarded), reads)) == []
    named = "I want to cancel the garden hose in order #W1. If I cannot, cancel the whole order."
    assert list(plans.planned_writes(intents.features(named), reads)) == []  # some of #W1's items, not all
    plain = "Cancel the garden hose, the whole order."
    assert [c.arguments["order_id"] for c in plans.planned_writes(intents.features(plain), reads)] == ["#W1"]


def test_a_refund_asked_to_a_method_policy_cannot_refund_to_returns_nothing() -> None:
    reads = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "u_1"}), USER),
        (ToolCall(tool="get_order_details", arguments={"order_id": "#W1"}), _delivered("#W1", "Lamp")),
    ]
    user = {"payment_methods": {"paypal_2": {"source": "paypal"}}}
    paid_by_paypal = {"payment_history": [{"transaction_type": "payment", "payment_method_id": "paypal_2"}]}
    assert plans.refund_kinds("I want the refund to my amex credit card.") == {"credit_card"}
    assert not plans.refund_possible("I want the refund to my amex credit card.", paid_by_paypal, user)
    assert plans.refund_possible("Refund to credit card, or if not possible refund to PayPal.", paid_by_paypal, user)
    assert plans.refund_possible("Return it, refund on my original payment method.", paid_by_paypal, user)
    card = list(plans.planned_writes(intents.features("Return the lamp and refund to my credit card."), reads))
    assert card == []  # #W1 was paid with a gift card: the card refund cannot be made, nothing else is made instead
    gift = plans.next_write(intents.features("Return the lamp and refund to GC."), history=reads)
    assert gift is not None and gift.arguments["payment_method_id"] == "gift_card_1"


def test_a_yes_no_option_is_asked_for_by_its_name() -> None:
    item = {"item_id": "1", "options": {"size": "12", "waterproof": "no"}}
    product = {"variants": {
        "2": {"available": True, "options": {"size": "12", "waterproof": "yes"}},
        "3": {"available": True, "options": {"size": "8", "waterproof": "no"}},
    }}  # fmt: skip
    assert plans.wanted_variant("the exact same boots but a waterproof variant", item, product) == "2"
    assert plans.wanted_variant("size 8, I do not care about waterproof or not", item, product) == "3"
    assert plans.wanted_variant("Yes, I confirm. A non-waterproof one in size 12.", item, product) is None


def test_a_replacing_request_strikes_the_earlier_ask_and_a_stated_method_asks_for_no_payment_change() -> None:
    replaced = plans.revision("I changed my mind: exchange it for the same item.", "I want to return the office chair.")
    assert replaced.intents == ("exchange",) and "office chair" in replaced.text
    assert "return" not in intents.features(f"{replaced.text}\n\nYes, I confirm.").intents  # read again later
    assert plans.asked_intents("My payment method is gift card.") == ()
    assert "payment" in plans.asked_intents("Please change the payment method of order #W1 to PayPal.")
    assert "modify" not in intents.classify("I changed my mind about the order.")
    assert intents.classify("I will adjust the desk lamp to be black color.") == ("modify",)
    assert intents.classify("If not possible, I am angry and ask for a human representative.") == ("human",)
