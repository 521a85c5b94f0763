"""How retail results read: users, orders and products as compact text lines, the router's look-ups, order facts.

On CPU every prompt token costs prefill time, so tool results are shown to the model as compact lines rather
than raw JSON. The answer's facts are sentences a customer reads, built from the tool results (never from the
model's words): what changed or waits for approval, and the status of the orders the ticket asks about, with
payment methods named as the customer knows them ('your Visa card ending 1234'), never by their ids.
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
"""Writes whose result is the changed order: the answer states what changed in it."""
STATUS_SENTENCES = {
    "pending": "Order {order} has not shipped yet.",
    "pending (item modified)": "Order {order} has not shipped yet; its items have been changed.",
    "processed": "Order {order} has shipped.",
    "delivered": "Order {order} has been delivered.",
    "cancelled": "Order {order} is cancelled.",
    "return requested": "A return has been requested for order {order}.",
    "exchange requested": "An exchange has been requested for order {order}.",
}
"""How an order's status reads to a customer (another status: 'The status of order X is Y.')."""
PENDING_REQUESTS = {
    "cancel_pending_order": "cancel order {order}",
    "modify_pending_order_address": "ship order {order} to {address}",
    "modify_pending_order_payment": "pay order {order} with {method}",
    "modify_pending_order_items": "change {items} in order {order}",
    "return_delivered_order_items": "return {items} from order {order}, refunded to {method}",
    "exchange_delivered_order_items": "exchange {items} from order {order}",
    "modify_user_address": "change the default address on your account to {address}",
}
"""The request a write carries out, in a customer's words, while it waits (for a supervisor's approval)."""
PAYMENT_SOURCES = ("credit_card", "paypal", "gift_card")


def order_facts(history: History, found: intents.TicketFeatures | None = None) -> list[str]:
    """The sentences the answer states from the tool results (never the model's), about what the ticket asks.

    What a write changed, or that it waits for approval, is always stated; an order only read is stated (its
    status, and tracking while it travels or when the ticket asks to track) when the ticket names it, or asks
    to track its orders without naming one, and no change to it was carried out (the change says its new
    state). Without `found` (the ticket's features) a read order is stated only when nothing was written.
    """
    methods = _payment_methods(history)
    tracking = found is None or "track" in found.intents
    orders: dict[str, dict[str, Any]] = {}
    changed: dict[str, str] = {}
    waiting: dict[str, str] = {}
    for call, result in history:
        if not isinstance(result, dict):
            continue
        if call.tool == "get_order_details" and result.get("order_id"):
            orders.setdefault(str(result["order_id"]), result)
        elif call.tool in PENDING_REQUESTS and result.get("status") == "pending_approval":
            key = str(call.arguments.get("order_id") or "user")
            waiting[key] = f"We have recorded your request to {_request(call, orders.get(key) or {}, methods)}."
        elif call.tool == "modify_user_address" and result.get("user_id"):
            changed["user"] = (
                f"The default address on your account is being changed to {postal_address(result.get('address'))}."
            )
        elif call.tool in FACT_WRITES and result.get("order_id") and result.get("status"):
            changed[str(result["order_id"])] = " ".join(_changed(call, result, history=history, methods=methods))
    wrote = bool(changed or waiting)
    shown = [
        _status_fact(order, tracking=tracking)
        for order_id, order in orders.items()
        if order_id not in changed and _asked(order_id, found, wrote)
    ]
    return [*shown, *changed.values(), *waiting.values()]


def _request(call: ToolCall, order: dict[str, Any], methods: dict[str, dict[str, Any]]) -> str:
    """What a waiting write asks for, from its arguments and the order as read ('return the Lamp from order #W1')."""
    arguments = call.arguments
    return PENDING_REQUESTS[call.tool].format(
        order=arguments.get("order_id"),
        address=postal_address(arguments),
        method=payment_words(arguments.get("payment_method_id"), methods),
        items=_names(_items(order, arguments.get("item_ids"))),
    )


def change_words(call: ToolCall, history: History) -> str:
    """A proposed change in the customer's words ('cancel order #W1'), from its arguments and the orders read."""
    if call.tool not in PENDING_REQUESTS:
        return call.tool.replace("_", " ")
    orders = {
        str(result["order_id"]): result
        for read, result in history
        if read.tool == "get_order_details" and isinstance(result, dict) and result.get("order_id")
    }
    return _request(call, orders.get(str(call.arguments.get("order_id"))) or {}, _payment_methods(history))


def _asked(order_id: str, found: intents.TicketFeatures | None, wrote: bool) -> bool:
    """Whether a read order's status answers the ticket: it names the order, or asks to track unnamed ones."""
    if found is None:
        return not wrote
    return order_id in found.order_ids or (not found.order_ids and not wrote and "track" in found.intents)


def _status_fact(order: dict[str, Any], *, tracking: bool = True) -> str:
    """The order's status as a sentence, with its tracking numbers while it travels (or with `tracking`)."""
    status = str(order.get("status"))
    order_id = str(order.get("order_id"))
    fact = STATUS_SENTENCES.get(status, "The status of order {order} is {status}.").format(
        order=order_id, status=status
    )
    numbers = [str(t) for f in order.get("fulfillments") or [] for t in f.get("tracking_id") or []]
    if numbers and (status == "processed" or (tracking and status == "delivered")):
        fact += f" Tracking number{'s' if len(numbers) > 1 else ''}: {', '.join(numbers)}."
    return fact


def _payment_methods(history: History) -> dict[str, dict[str, Any]]:
    """The user's payment methods as the latest user read (or user change) returned them, by id."""
    methods: dict[str, dict[str, Any]] = {}
    for _, result in history:
        if isinstance(result, dict) and isinstance(result.get("payment_methods"), dict) and "user_id" in result:
            methods = result["payment_methods"]
    return methods


def payment_words(method_id: Any, methods: dict[str, dict[str, Any]]) -> str:
    """A payment method as the customer knows it ('your Visa card ending 1234', 'your PayPal account'), never
    its id: from the user's payment methods, else from the kind the id starts with."""
    method = methods.get(str(method_id)) or {}
    source = str(method.get("source") or next((s for s in PAYMENT_SOURCES if str(method_id).startswith(s)), ""))
    if source == "credit_card":
        brand = str(method["brand"]).title() if method.get("brand") else "credit"
        last_four = f" ending {method['last_four']}" if method.get("last_four") else ""
        return f"your {brand} card{last_four}"
    if source == "paypal":
        return "your PayPal account"
    if source == "gift_card":
        return "your gift card"
    return f"your {source.replace('_', ' ')}" if source else "the payment method you chose"


def _money(amount: Any) -> str:
    return f"${float(amount):,.2f}"


def _items(order: dict[str, Any], item_ids: Any) -> list[dict[str, Any]]:
    """The order's lines whose item id is among `item_ids` (as often as it is listed there)."""
    wanted = [str(item_id) for item_id in item_ids or []]
    lines: list[dict[str, Any]] = []
    left = list(order.get("items") or [])
    for item_id in wanted:
        line = next((item for item in left if str(item.get("item_id")) == item_id), None)
        if line is not None:
            lines.append(line)
            left.remove(line)
    return lines


def _names(lines: Sequence[dict[str, Any]]) -> str:
    names = [f"the {item.get('name')}" for item in lines]
    if len(names) < 2:
        return names[0] if names else "the items"
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def _variant_words(item_id: str, history: History) -> str | None:
    """The options of an item as a product read shows them ('color red, size M'), or None when none was read."""
    for _, result in reversed(history):
        variants = result.get("variants") if isinstance(result, dict) else None
        if isinstance(variants, dict) and isinstance(variants.get(item_id), dict):
            return _options(variants[item_id].get("options")) or None
    return None


def _difference(amount: float, method: str) -> list[str]:
    if round(amount, 2) > 0:
        return [f"The price difference of {_money(amount)} is charged to {method}."]
    if round(amount, 2) < 0:
        return [f"The price difference of {_money(-amount)} is refunded to {method}."]
    return []


def _changed(
    call: ToolCall, order: dict[str, Any], *, history: History, methods: dict[str, dict[str, Any]]
) -> list[str]:
    """What a write changed in an order, in a customer's words, from its arguments and the changed order."""
    arguments, order_id = call.arguments, str(order.get("order_id"))
    method = payment_words(arguments.get("payment_method_id"), methods)
    if call.tool == "cancel_pending_order":
        refunds = [p for p in order.get("payment_history") or [] if p.get("transaction_type") == "refund"]
        paid_back = [
            f"{_money(p.get('amount'))} to {payment_words(p.get('payment_method_id'), methods)}" for p in refunds
        ]
        back = [f"We are refunding {' and '.join(paid_back)}."] if paid_back else []
        return [f"Order {order_id} is being cancelled.", *back]
    if call.tool == "modify_pending_order_address":
        return [f"Order {order_id} is being changed to ship to {postal_address(order.get('address'))}."]
    if call.tool == "modify_pending_order_payment":
        refunds = [p for p in order.get("payment_history") or [] if p.get("transaction_type") == "refund"]
        back = [
            f"The first payment goes back to {payment_words(p.get('payment_method_id'), methods)}." for p in refunds
        ]
        return [f"Order {order_id} is being switched to payment with {method}.", *back[-1:]]
    lines = _items(order, arguments.get("new_item_ids" if call.tool == "modify_pending_order_items" else "item_ids"))
    if call.tool == "modify_pending_order_items":
        now = [f"{_names([line])} ({_options(line.get('options'))})" for line in lines]
        payments = order.get("payment_history") or []
        last = payments[-1] if payments else {}
        sign = 1 if last.get("transaction_type") == "payment" else -1
        return [f"Order {order_id} is being changed to {', '.join(now) or 'the options you asked for'}.",
                *_difference(sign * float(last.get("amount") or 0), method)]  # fmt: skip
    if call.tool == "return_delivered_order_items":
        total = sum(float(line.get("price") or 0) for line in lines)
        return [f"The return of {_names(lines)} from order {order_id} is requested.",
                f"The refund of {_money(total)} goes to {method}."]  # fmt: skip
    if call.tool == "exchange_delivered_order_items":
        new = [
            words for item_id in arguments.get("new_item_ids") or [] if (words := _variant_words(str(item_id), history))
        ]
        wanted = f" for the new options ({'; '.join(new)})" if new else ""
        return [f"The exchange of {_names(lines)} from order {order_id}{wanted} is requested.",
                *_difference(float(order.get("exchange_price_difference") or 0), method)]  # fmt: skip
    return [_status_fact(order)]


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


def postal_address(address: Any) -> str:
    """An address as a customer writes it: '12 Elm Street, Apt 4, Springfield, IL 62704, USA'."""
    if not isinstance(address, dict):
        return str(address or "")
    place = " ".join(str(address[key]) for key in ("state", "zip") if address.get(key))
    parts = [address.get("address1"), address.get("address2"), address.get("city"), place, address.get("country")]
    return ", ".join(str(part) for part in parts if part)


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


RENDERERS = Renderers(
    result_text=result_text, lookups=router_lookups, facts=order_facts, details=DETAILS, request=change_words
)
"""How the retail pack's results and facts read."""
