"""Retail renderers: users, orders and products as compact lines, and the router's look-ups as one block."""

from __future__ import annotations

import pytest

from streamdesk.agent.models import ToolCall
from streamdesk.domains.retail import renderers

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
