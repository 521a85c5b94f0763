"""Retail renderers: results as compact lines, the router's look-ups as one block, and the facts a reply states."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from streamdesk.agent import answer_config, backends, loop, tools
from streamdesk.agent.answers import Ticket
from streamdesk.agent.models import ToolCall
from streamdesk.domains.retail import intents, renderers
from streamdesk.identity.models import agent_for_customer
from streamdesk.seed import taubench, tickets

ORDER = {
    "order_id": "#W1",
    "user_id": "ann_lee_1",
    "address": {"address1": "1 Elm St", "address2": "", "city": "Denver", "state": "CO", "zip": "80201"},
    "items": [
        {"name": "Lamp", "product_id": "p1", "item_id": "i1", "price": 9.5, "options": {"color": "white"}},
    ],
    "status": "delivered",
    "fulfillments": [{"item_ids": ["i1"], "tracking_id": ["t-9"]}],
    "payment_history": [{"transaction_type": "payment", "amount": 9.5, "payment_method_id": "paypal_1"}],
    "cancel_reason": "no longer needed",
}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            ORDER,
            "order #W1: delivered; ship to 1 Elm St, Denver, CO, 80201\n"
            "- item i1: Lamp (product p1; color white) 9.5\n"
            "tracking: t-9\npayments: payment 9.5 via paypal_1\n"
            '{"cancel_reason":"no longer needed"}',
        ),
        (
            {
                "user_id": "ann_lee_1",
                "name": {"first_name": "Ann", "last_name": "Lee"},
                "address": {"city": "Denver"},
                "email": "ann@example.com",
                "payment_methods": {"gift_card_1": {"source": "gift_card", "balance": 20}},
                "orders": ["#W1"],
            },
            "user ann_lee_1: Ann Lee, ann@example.com\naddress: Denver\n"
            "payment methods: gift_card_1 (gift_card balance 20)\norders: #W1",
        ),
        (
            {
                "product_id": "p1",
                "name": "Lamp",
                "variants": {
                    "i1": {"options": {"color": "white"}, "available": True, "price": 9.5},
                    "i2": {"options": {"color": "red"}, "available": False, "price": 9.0},
                },
            },
            "product p1: Lamp; available variants:\n- item i1: color white 9.5\n(1 unavailable variants not listed)",
        ),
        ({"user_id": "ann_lee_1"}, '{"user_id":"ann_lee_1"}'),
    ],
)
def test_tool_results_are_shown_as_compact_lines(result: dict[str, object], expected: str) -> None:
    assert renderers.result_text("any", result) == expected


def test_lookups_are_one_block_naming_each_call() -> None:
    call = ToolCall(tool="find_user_id_by_email", arguments={"email": "ann@example.com"})
    content = renderers.lookups_message([(call, {"user_id": "ann_lee_1"}, None), (call, None, "no such user")])[
        "content"
    ]
    assert content.startswith("Look-ups made for this ticket:\n<<<UNTRUSTED source=tools id=")
    assert 'find_user_id_by_email(email=ann@example.com):\n{"user_id":"ann_lee_1"}' in content
    assert "error: no such user" in content


USER: dict[str, Any] = {
    "user_id": "ann_lee_1",
    "payment_methods": {
        "credit_card_1": {"source": "credit_card", "brand": "visa", "last_four": "1234"},
        "paypal_2": {"source": "paypal"},
        "gift_card_3": {"source": "gift_card", "balance": 20},
    },
}
PENDING: dict[str, Any] = {
    "order_id": "#W1000001",
    "status": "pending",
    "address": ORDER["address"],
    "items": [
        {"name": "Lamp", "product_id": "p1", "item_id": "i1", "price": 9.5, "options": {"color": "white"}},
        {"name": "Mug", "product_id": "p2", "item_id": "i3", "price": 4.0, "options": {"size": "large"}},
    ],
    "payment_history": [{"transaction_type": "payment", "amount": 13.5, "payment_method_id": "credit_card_1"}],
}
"""A pending order of `USER`, paid by Visa."""
INTERNAL_ID = re.compile(r"\b(?:credit_card|paypal|gift_card)_\d|\b[a-z]+_[a-z_]+\b")
"""A payment method id or a tool name: nothing a customer should read."""


def read(order: dict[str, Any]) -> tuple[ToolCall, dict[str, Any]]:
    return ToolCall(tool="get_order_details", arguments={"order_id": order["order_id"]}), order


@pytest.mark.parametrize(
    ("method_id", "expected"),
    [
        ("credit_card_1", "your Visa card ending 1234"),
        ("paypal_2", "your PayPal account"),
        ("gift_card_3", "your gift card"),
        ("credit_card_9", "your credit card"),  # not among the user's methods: the kind its id names
        ("paypal_9", "your PayPal account"),
    ],
)
def test_payment_methods_read_as_the_customer_knows_them(method_id: str, expected: str) -> None:
    assert renderers.payment_words(method_id, USER["payment_methods"]) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", "Order #W1000001 has not shipped yet."),
        ("processed", "Order #W1000001 has shipped. Tracking number: t-9."),
        ("delivered", "Order #W1000001 has been delivered. Tracking number: t-9."),
        ("cancelled", "Order #W1000001 is cancelled."),
        ("return requested", "A return has been requested for order #W1000001."),
        ("exchange requested", "An exchange has been requested for order #W1000001."),
        ("on hold", "The status of order #W1000001 is on hold."),
    ],
)
def test_an_order_read_states_its_status_in_a_sentence(status: str, expected: str) -> None:
    order = {**ORDER, "order_id": "#W1000001", "status": status}
    found = intents.features("Where is my order #W1000001?")
    assert renderers.order_facts([read(order)], found) == [expected]


@pytest.mark.parametrize(
    ("call", "result", "expected"),
    [
        (
            ToolCall(tool="cancel_pending_order", arguments={"order_id": "#W1000001", "reason": "no longer needed"}),
            {**PENDING, "status": "cancelled", "payment_history": [
                *PENDING["payment_history"],
                {"transaction_type": "refund", "amount": 13.5, "payment_method_id": "credit_card_1"},
            ]},
            "Order #W1000001 is being cancelled. We are refunding $13.50 to your Visa card ending 1234.",
        ),
        (
            ToolCall(tool="modify_pending_order_address", arguments={"order_id": "#W1000001"}),
            {**PENDING, "address": {"address1": "12 Elm Street", "address2": "Apt 4", "city": "Springfield",
                                    "state": "IL", "zip": "62704", "country": "USA"}},
            "Order #W1000001 is being changed to ship to 12 Elm Street, Apt 4, Springfield, IL 62704, USA.",
        ),
        (
            ToolCall(tool="modify_pending_order_payment",
                     arguments={"order_id": "#W1000001", "payment_method_id": "paypal_2"}),
            {**PENDING, "payment_history": [
                *PENDING["payment_history"],
                {"transaction_type": "payment", "amount": 13.5, "payment_method_id": "paypal_2"},
                {"transaction_type": "refund", "amount": 13.5, "payment_method_id": "credit_card_1"},
            ]},
            "Order #W1000001 is being switched to payment with your PayPal account. The first payment goes back to "
            "your Visa card ending 1234.",
        ),
        (
            ToolCall(tool="modify_pending_order_items", arguments={
                "order_id": "#W1000001", "item_ids": ["i1"], "new_item_ids": ["i2"], "payment_method_id": "gift_card_3"
            }),
            {**PENDING, "status": "pending (item modified)", "items": [
                {"name": "Lamp", "product_id": "p1", "item_id": "i2", "price": 11.0, "options": {"color": "red"}},
                PENDING["items"][1],
            ], "payment_history": [
                *PENDING["payment_history"],
                {"transaction_type": "payment", "amount": 1.5, "payment_method_id": "gift_card_3"},
            ]},
            "Order #W1000001 is being changed to the Lamp (color red). The price difference of $1.50 is charged to "
            "your gift card.",
        ),
        (
            ToolCall(tool="return_delivered_order_items", arguments={
                "order_id": "#W1000001", "item_ids": ["i1", "i3"], "payment_method_id": "gift_card_3"
            }),
            {**PENDING, "status": "return requested", "return_items": ["i1", "i3"]},
            "The return of the Lamp and the Mug from order #W1000001 is requested. The refund of $13.50 goes to your "
            "gift card.",
        ),
        (
            ToolCall(tool="exchange_delivered_order_items", arguments={
                "order_id": "#W1000001", "item_ids": ["i3"], "new_item_ids": ["i4"], "payment_method_id": "paypal_2"
            }),
            {**PENDING, "status": "exchange requested", "exchange_price_difference": -1.25},
            "The exchange of the Mug from order #W1000001 for the new options (size small) is requested. The price "
            "difference of $1.25 is refunded to your PayPal account.",
        ),
    ],
)  # fmt: skip
def test_a_change_states_what_changed_in_words_a_customer_reads(
    call: ToolCall, result: dict[str, Any], expected: str
) -> None:
    product = {"product_id": "p2", "name": "Mug", "variants": {"i4": {"options": {"size": "small"}, "available": True}}}
    history = [
        (ToolCall(tool="get_user_details", arguments={"user_id": "ann_lee_1"}), USER),
        read(PENDING),
        (ToolCall(tool="get_product_details", arguments={"product_id": "p2"}), product),
        (call, result),
    ]
    found = intents.features("Order #W1000001: please make the change, I confirm.")
    facts = renderers.order_facts(history, found)
    assert facts == [expected]
    assert not INTERNAL_ID.search(" ".join(facts))


def test_only_what_the_ticket_asks_about_is_stated() -> None:
    other = {**ORDER, "order_id": "#W2000002", "status": "delivered"}
    moved = {**USER, "address": {"address1": "12 Elm Street", "city": "Springfield", "state": "IL", "zip": "62704"}}
    user_change = ToolCall(tool="modify_user_address", arguments={"user_id": "ann_lee_1"})
    history = [read(PENDING), read(other), (user_change, moved)]
    account = intents.features("Please change the default address on my account to 12 Elm Street. I confirm.")
    assert renderers.order_facts(history, account) == [
        "The default address on your account is being changed to 12 Elm Street, Springfield, IL 62704."
    ]
    question = intents.features("If an order gets cancelled, how long does the refund take?")
    assert renderers.order_facts([read(PENDING), read(other)], question) == []
    track = intents.features("Where are my orders?")
    assert renderers.order_facts([read(PENDING), read(other)], track) == [
        "Order #W1000001 has not shipped yet.",
        "Order #W2000002 has been delivered. Tracking number: t-9.",
    ]
    named = intents.features("Has order #W2000002 arrived?")
    assert renderers.order_facts([read(PENDING), read(other)], named) == ["Order #W2000002 has been delivered."]


def test_a_change_waiting_for_approval_says_what_was_asked_without_internal_ids() -> None:
    cancel = ToolCall(tool="cancel_pending_order", arguments={"order_id": "#W1000001", "reason": "ordered by mistake"})
    waiting = {"status": "pending_approval", "action_id": "3e50e0e8", "message": "a supervisor must approve this first"}
    found = intents.features("Please cancel order #W1000001, I ordered it by mistake. I confirm.")
    assert renderers.order_facts([read(PENDING), (cancel, waiting)], found) == [
        "Order #W1000001 has not shipped yet.",
        "We have recorded your request to cancel order #W1000001.",
    ]
    back = ToolCall(
        tool="return_delivered_order_items",
        arguments={"order_id": "#W1000001", "item_ids": ["i3"], "payment_method_id": "credit_card_1"},
    )
    delivered = {**PENDING, "status": "delivered", "fulfillments": [{"tracking_id": ["t-9"]}]}
    user = (ToolCall(tool="get_user_details", arguments={"user_id": "ann_lee_1"}), USER)
    found = intents.features("Please return the mug from order #W1000001. I confirm.")
    assert renderers.order_facts([user, read(delivered), (back, waiting)], found) == [
        "Order #W1000001 has been delivered.",  # no tracking number: the ticket does not ask to track it
        "We have recorded your request to return the Mug from order #W1000001, refunded to your Visa card ending 1234.",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("seeded", ["bundled", "shared"])
def test_the_sample_tickets_state_only_what_they_ask_about_and_no_internal_ids(
    seeded: str,
    conn: psycopg.Connection,
    load_world: Callable[[taubench.World], None],
    backend: backends.TransformersBackend,
    request: pytest.FixtureRequest,
) -> None:
    """Each `make run` sample ticket through the real loop (its verified customer, nothing approved), in the
    bundled mini world of a fresh clone and in the full τ² world of `../shared`: the reply names no order but the
    one the ticket is about, and no payment method id, tool name or action id."""
    world = (
        taubench.load_world(path=taubench.BUNDLED_DB)
        if seeded == "bundled"
        else request.getfixturevalue("retail_world")
    )
    load_world(world)
    settings = answer_config.AnswerSettings(max_new_tokens=160, reply_max_chars=80, knowledge_k=0)
    replies = {}
    for sample in tickets.sample_tickets(world):
        ticket = Ticket(
            source="zendesk", ticket_id=f"S-{sample.kind}", event_id=f"zendesk:S-{sample.kind}:{uuid.uuid4().hex[:8]}",
            subject=sample.subject, body=sample.body, requester_email=sample.requester_email,
        )  # fmt: skip
        result = loop.answer_ticket(
            conn, ticket=ticket, principal=agent_for_customer(sample.user_id), backend=backend,
            registry=tools.default_registry(), max_steps=1, settings=settings,
        )  # fmt: skip
        text = replies[sample.kind] = result.answer.text
        assert not INTERNAL_ID.search(text), text
        assert not any(step.action_id and step.action_id in text for step in result.answer.trace), text
        assert set(re.findall(r"#W\d+", text)) <= {sample.order_id} - {None}, text
    assert "has shipped. Tracking number" in replies["track"]
    assert re.search(r'We can cancel order #W\d+\. Reply "yes" to confirm', replies["cancel"])  # held (issue 15)
    assert "A supervisor must approve this change before it takes effect." in replies["return"] or re.search(
        "We will write again as soon as our systems confirm the change.", replies["return"]
    )
    refund = r"The refund of \$[\d.]+ goes to your |We have recorded your request to return the .+ refunded to your "
    assert re.search(refund, replies["return"])  # the bundled world's return waits for approval (over the limit)
    assert (
        (replies["address"].split("\n\n")[-2])
        == "The default address on your account is being changed to 12 Elm Street, Apt 4, Springfield, IL 62704, USA."
    )
    assert "has not shipped yet." in replies["name_zip"]
