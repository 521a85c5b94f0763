"""Retail approval defaults and the money a return or exchange moves, derived from trusted tool results."""

from __future__ import annotations

from typing import Any

from streamdesk.agent.packs import ApprovalDefaults

APPROVALS = ApprovalDefaults(
    approval_limits={"return_delivered_order_items": 200.0, "exchange_delivered_order_items": 200.0},
    hard_limits={"return_delivered_order_items": 5000.0, "exchange_delivered_order_items": 5000.0},
    always_approve=("cancel_pending_order", "modify_pending_order_payment"),
)
"""Returns and exchanges above 200 wait for a supervisor, above 5000 are denied; cancellations and payment
changes always wait (the policy settings may override each)."""


def _order(trusted: list[Any], order_id: str) -> dict[str, Any] | None:
    for value in trusted:
        if isinstance(value, dict) and value.get("order_id") == order_id and isinstance(value.get("items"), list):
            return value
    return None


def _variant_price(trusted: list[Any], item_id: str) -> float | None:
    for value in trusted:
        variants = value.get("variants") if isinstance(value, dict) else None
        if isinstance(variants, dict) and isinstance(variants.get(item_id), dict):
            return float(variants[item_id]["price"])
    return None


def derived_amount(*, tool: str, arguments: dict[str, Any], trusted: list[Any]) -> float | None:
    """The money a return or exchange moves, from trusted order and product details; None when unknown."""
    if tool not in ("return_delivered_order_items", "exchange_delivered_order_items"):
        return None
    order = _order(trusted, str(arguments.get("order_id")))
    if order is None:
        return None
    prices = {str(item.get("item_id")): float(item.get("price") or 0) for item in order["items"]}
    old = [prices.get(str(item_id)) for item_id in arguments.get("item_ids") or []]
    if any(price is None for price in old):
        return None
    if tool == "return_delivered_order_items":
        return round(sum(p for p in old if p is not None), 2)
    new = [_variant_price(trusted, str(item_id)) for item_id in arguments.get("new_item_ids") or []]
    if any(price is None for price in new) or len(new) != len(old):
        return None
    return round(abs(sum(p for p in new if p is not None) - sum(p for p in old if p is not None)), 2)
