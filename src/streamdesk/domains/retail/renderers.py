"""How retail results read: users, orders and products as compact text lines, the router's look-ups, order facts.

On CPU every prompt token costs prefill time, so tool results are shown as compact lines rather than raw
JSON; the answer states each order's status from the tool results, never from the model's words.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from streamdesk.agent import prompts
from streamdesk.agent.models import Message, ToolCall
from streamdesk.agent.packs import History, Lookup, Renderers
from streamdesk.domains.retail import intents, narrowing

FACT_WRITES = frozenset(
    {
        "cancel_pending_order", "modify_pending_order_address", "modify_pending_order_items",
        "modify_pending_order_payment", "return_delivered_order_items", "exchange_delivered_order_items",
    }
)  # fmt: skip
"""Writes whose result is the changed order: the answer states its new status."""


def order_facts(history: History) -> list[str]:
    """One sentence per order the tools looked up or changed, and one per other change, stated from the tool
    results (never the model's): each order's status and tracking, what a write changed, the account's address."""
    facts: dict[str, str] = {}
    for call, result in history:
        if not isinstance(result, dict):
            continue
        if call.tool == "modify_user_address" and result.get("user_id"):
            facts["user"] = f"The default address on your account is now {_address(result.get('address'))}."
        if not result.get("order_id") or not result.get("status"):
            continue
        order_id, status = str(result["order_id"]), str(result["status"])
        if call.tool == "get_order_details":
            tracking = [t for f in result.get("fulfillments") or [] for t in f.get("tracking_id") or []]
            fact = f"Order {order_id} is {status}."
            if tracking:
                fact += f" Tracking number{'s' if len(tracking) > 1 else ''}: {', '.join(map(str, tracking))}."
            facts.setdefault(order_id, fact)
        elif call.tool in FACT_WRITES:
            now = f"Order {order_id} is now {status.replace('_', ' ')}."
            facts[order_id] = " ".join([now, *_changed(call, result)])
    return list(facts.values())


def _names(order: dict[str, Any], item_ids: Any) -> str:
    wanted = [str(item_id) for item_id in item_ids or []]
    names = [str(item.get("name")) for item in order.get("items") or [] if str(item.get("item_id")) in wanted]
    return ", ".join(names) or "the items"


def _changed(call: ToolCall, order: dict[str, Any]) -> list[str]:
    """What a write changed in an order, from its arguments and the changed order."""
    arguments = call.arguments
    if call.tool == "modify_pending_order_address":
        return [f"It will ship to {_address(order.get('address'))}."]
    if call.tool == "modify_pending_order_payment":
        return [f"It is now paid with {arguments.get('payment_method_id')}."]
    if call.tool == "modify_pending_order_items":
        return [f"Changed: {_names(order, arguments.get('new_item_ids'))} ({len(arguments.get('item_ids') or [])} "
                f"item(s)), any price difference settled with {arguments.get('payment_method_id')}."]  # fmt: skip
    if call.tool == "return_delivered_order_items":
        return [f"Return requested for: {_names(order, arguments.get('item_ids'))}; the refund goes to "
                f"{arguments.get('payment_method_id')}."]  # fmt: skip
    if call.tool == "exchange_delivered_order_items":
        return [f"Exchange requested for: {_names(order, arguments.get('item_ids'))}; any price difference is "
                f"settled with {arguments.get('payment_method_id')}."]  # fmt: skip
    if call.tool == "cancel_pending_order" and arguments.get("reason"):
        return [f"Reason: {arguments['reason']}. Payments are refunded to the methods they came from."]
    return []


def router_lookups(found: intents.TicketFeatures, lookups: list[Lookup]) -> Message:
    """The router's reads as one block: authentication look-ups left out once the user is read, orders in brief
    when their status or items do not fit the request, details the ticket's intents do not need hidden."""
    if any(call.tool == "get_user_details" and result for call, result, _ in lookups):
        lookups = [entry for entry in lookups if entry[0].tool not in narrowing.AUTH_TOOLS]  # implied by the user
    orders = [result for call, result, _ in lookups if call.tool == "get_order_details" and result]
    return lookups_message(
        lookups,
        relevant=narrowing.order_statuses(found),
        hide=intents.hidden_details(found, details=DETAILS),
        named_items=frozenset(intents.named_items(found.text, orders)),
    )


def lookups_message(
    calls: Sequence[tuple[ToolCall, dict[str, Any] | None, str | None]],
    *,
    relevant: Callable[[str], bool] | None = None,
    hide: frozenset[str] = frozenset(),
    named_items: frozenset[str] = frozenset(),
) -> Message:
    """The look-ups made before the model's first step (`(call, result, error)`), as one untrusted block.

    An order whose status is not `relevant` (to what the ticket asks), or that holds none of the
    `named_items` when the ticket names some, is shown as one line, without items; in the others the
    items the ticket does not name are shown by id and name only. `hide` leaves details out that the
    ticket's request cannot use (see `result_text`).
    """
    lines = []
    for call, result, error in calls:
        brief = isinstance(result, dict) and (
            (relevant is not None and not relevant(str(result.get("status") or "")))
            or (bool(named_items) and not named_items & {str(i.get("item_id")) for i in result.get("items") or []})
        )
        text = result_text(call.tool, result, error=error, brief=brief, hide=hide, named_items=named_items)
        lines.append(f"{_signature(call)}:\n{text}")
    content = "Look-ups made for this ticket:\n" + prompts.untrusted("\n".join(lines), source="tools")
    return {"role": "user", "content": content}


def _signature(call: ToolCall) -> str:
    arguments = ", ".join(f"{name}={value}" for name, value in call.arguments.items())
    return f"{call.tool}({arguments})"


DETAILS = frozenset({"address", "email", "product_id", "options", "price", "payments", "tracking"})
"""Details of users and orders a ticket may not need (ids, names and statuses are always shown)."""


def result_text(
    tool: str,
    result: Any,
    *,
    error: str | None = None,
    brief: bool = False,
    hide: frozenset[str] = frozenset(),
    named_items: frozenset[str] = frozenset(),
) -> str:
    """A tool result as compact text lines: users, orders and products by field, anything else as compact JSON.

    `brief` shows an order as one line: its status and item names; `hide` leaves those of `DETAILS` out.
    """
    if error is not None:
        return f"error: {error}"
    if not isinstance(result, dict):
        return json.dumps(result, separators=(",", ":"), default=str)
    if isinstance(result.get("items"), list) and "order_id" in result:
        if brief:
            names = ", ".join(str(item.get("name")) for item in result["items"])
            return f"order {result['order_id']}: {result.get('status')}; items: {names}"
        return _order_text(result, hide=hide, named_items=named_items)
    if isinstance(result.get("payment_methods"), dict) and "user_id" in result:
        return _user_text(result, hide=hide)
    if isinstance(result.get("variants"), dict) and "product_id" in result:
        return _product_text(result, hide=hide)
    return json.dumps(result, separators=(",", ":"), default=str)


def _options(options: Any) -> str:
    if not isinstance(options, dict):
        return str(options or "")
    return ", ".join(f"{name} {value}" for name, value in options.items())


def _address(address: Any) -> str:
    if not isinstance(address, dict):
        return str(address or "")
    keys = ("address1", "address2", "city", "state", "zip", "country")
    return ", ".join(str(address[key]) for key in keys if address.get(key))


def _method(method: dict[str, Any]) -> str:
    extras = [str(method[key]) for key in ("brand", "last_four") if method.get(key)]
    if "balance" in method:
        extras.append(f"balance {method['balance']}")
    return f"{method.get('id')} ({' '.join([str(method.get('source') or ''), *extras]).strip()})"


def _user_text(user: dict[str, Any], *, hide: frozenset[str] = frozenset()) -> str:
    name = user.get("name") or {}
    full = " ".join(str(name[key]) for key in ("first_name", "last_name") if name.get(key))
    methods = [_method({"id": key, **value}) for key, value in (user.get("payment_methods") or {}).items()]
    email = "" if "email" in hide else f", {user.get('email') or 'no email'}"
    lines = [f"user {user['user_id']}: {full}{email}"]
    if "address" not in hide:
        lines.append(f"address: {_address(user.get('address'))}")
    lines.append(f"payment methods: {', '.join(methods) or 'none'}")
    lines.append(f"orders: {', '.join(map(str, user.get('orders') or [])) or 'none'}")
    return "\n".join(lines)


def _order_text(
    order: dict[str, Any], *, hide: frozenset[str] = frozenset(), named_items: frozenset[str] = frozenset()
) -> str:
    tracking = [str(t) for f in order.get("fulfillments") or [] for t in f.get("tracking_id") or []]
    payments = [
        f"{p.get('transaction_type')} {p.get('amount')} via {p.get('payment_method_id')}"
        for p in order.get("payment_history") or []
    ]
    head = f"order {order['order_id']}: {order.get('status')}"
    lines = [head if "address" in hide else f"{head}; ship to {_address(order.get('address'))}"]
    for item in order["items"]:
        details = [] if "product_id" in hide else [f"product {item.get('product_id')}"]
        if "options" not in hide:
            details.append(_options(item.get("options")))
        line = f"- item {item.get('item_id')}: {item.get('name')}"
        if named_items and str(item.get("item_id")) not in named_items:
            lines.append(line)
            continue
        line += f" ({'; '.join(details)})" if details else ""
        lines.append(line if "price" in hide else f"{line} {item.get('price')}")
    if tracking and "tracking" not in hide:
        lines.append(f"tracking: {', '.join(tracking)}")
    if payments and "payments" not in hide:
        lines.append(f"payments: {'; '.join(payments)}")
    extras = {k: v for k, v in order.items() if k not in _ORDER_SHOWN}
    if extras:
        lines.append(json.dumps(extras, separators=(",", ":"), default=str))
    return "\n".join(lines)


_ORDER_SHOWN = frozenset({"order_id", "user_id", "address", "items", "status", "fulfillments", "payment_history"})


def _product_text(product: dict[str, Any], *, hide: frozenset[str] = frozenset()) -> str:
    variants = product.get("variants") or {}
    available = {k: v for k, v in variants.items() if isinstance(v, dict) and v.get("available")}
    lines = [f"product {product['product_id']}: {product.get('name')}; available variants:"]
    for item_id, variant in available.items():
        line = f"- item {item_id}: {_options(variant.get('options'))}"
        lines.append(line if "price" in hide else f"{line} {variant.get('price')}")
    if len(available) < len(variants):
        lines.append(f"({len(variants) - len(available)} unavailable variants not listed)")
    return "\n".join(lines)


RENDERERS = Renderers(result_text=result_text, lookups=router_lookups, facts=order_facts, details=DETAILS)
"""How the retail pack's results and facts read."""
