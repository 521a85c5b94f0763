"""Retail approvals: the money a return or exchange moves comes from trusted details."""

from __future__ import annotations

from streamdesk.domains.retail import approvals


def test_derived_amounts_come_from_trusted_details() -> None:
    order = {"order_id": "#W1", "items": [{"item_id": "1", "price": 10.5}, {"item_id": "2", "price": 4}]}
    product = {"product_id": "9", "variants": {"3": {"price": 12.0}}}
    returned = approvals.derived_amount(
        tool="return_delivered_order_items", arguments={"order_id": "#W1", "item_ids": ["1", "2"]}, trusted=[order]
    )
    exchanged = approvals.derived_amount(
        tool="exchange_delivered_order_items",
        arguments={"order_id": "#W1", "item_ids": ["1"], "new_item_ids": ["3"]},
        trusted=[order, product],
    )
    unknown = approvals.derived_amount(
        tool="exchange_delivered_order_items",
        arguments={"order_id": "#W1", "item_ids": ["1"], "new_item_ids": ["4"]},
        trusted=[order, product],
    )
    assert (returned, exchanged, unknown) == (14.5, 1.5, None)


def test_returns_and_exchanges_wait_above_their_limits_and_some_writes_always_wait() -> None:
    assert approvals.APPROVALS.approval_limits["return_delivered_order_items"] == 200.0
    assert approvals.APPROVALS.hard_limits["exchange_delivered_order_items"] == 5000.0
    assert approvals.APPROVALS.always_approve == ("cancel_pending_order", "modify_pending_order_payment")
