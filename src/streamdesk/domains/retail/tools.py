"""The τ²-bench retail tools (names, arguments and rules as in tau2-bench's RetailTools) over the entities table.

Customers, orders, order items and products are `entities` rows as the Debezium ingest writes them. Write
tools check the retail policy's rules in code, then write partial entity events through the entity store
with the row's version bumped (last element + 1), so the change is inspectable and a newer ERP change still
wins. Handlers do not commit: the registry runs each call in a transaction (a savepoint when one is open).

The changes go to the ERP, the system of record (`SYSTEM`): when the agent carries a write out, the core
captures each row change (`commands.record`: the columns set and the values they held when checked) into a
command on `command.erp`, and the local copy changes only when the ERP's CDC event comes back. Outside a
capture (a direct call of the registry, as the tool tests make) the change applies to the local copy.
"""

from __future__ import annotations

import ast
import operator
import unicodedata
import uuid
from collections import Counter
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import dict_row

from streamdesk.agent import tools as desk
from streamdesk.agent.exceptions import (
    CrossCustomerAccessError,
    InvalidToolArgumentsError,
    NotFoundError,
    RuleViolationError,
)
from streamdesk.agent.models import Tool, ToolContext, ToolKind, arguments_schema
from streamdesk.commands import service as commands
from streamdesk.commands.models import RowChange
from streamdesk.contracts import EntityEvent, utcnow
from streamdesk.entities import store as entities

Row = dict[str, Any]
SYSTEM = "erp"
"""The system of record of customers, orders and their items (commands go to `command.erp`)."""
TABLES = {"customer": "customers", "order": "orders", "order_item": "order_items", "product": "products"}
"""The ERP table (as its CDC names it) of each entity type."""
HANDOFF_MESSAGE = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
CANCEL_REASONS = ("no longer needed", "ordered by mistake")
ORDER_EXTRAS = (
    "cancel_reason",
    "exchange_items",
    "exchange_new_items",
    "exchange_payment_method_id",
    "exchange_price_difference",
    "return_items",
    "return_payment_method_id",
)

_SELECT = "SELECT entity_type, source, external_id, version, attributes, tenant FROM entities"
_LIVE = " AND tenant = %s AND NOT deleted"

# --- reads -------------------------------------------------------------------------------------------------


def _one(
    conn: psycopg.Connection, *, entity_type: str, external_id: str, context: ToolContext, lock: bool
) -> Row | None:
    sql = f"{_SELECT} WHERE entity_type = %s AND external_id = %s{_LIVE} ORDER BY updated_at DESC LIMIT 1"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql + (" FOR UPDATE" if lock else ""), (entity_type, external_id, context.tenant)).fetchone()


def _customer(conn: psycopg.Connection, user_id: str, context: ToolContext, *, lock: bool = False) -> Row:
    _check_customer(user_id, context)
    row = _one(conn, entity_type="customer", external_id=user_id, context=context, lock=lock)
    if row is None:
        raise NotFoundError(f"user {user_id!r} not found; look the id up with find_user_id_by_email first")
    return row


def _order(
    conn: psycopg.Connection, order_id: str, context: ToolContext, *, lock: bool = False
) -> tuple[Row, list[Row]]:
    """The order row and its item rows (line order); raises unless it is the context customer's."""
    row = _one(conn, entity_type="order", external_id=order_id, context=context, lock=lock)
    if row is None:
        raise NotFoundError(f"order {order_id!r} not found; order ids look like '#W0000000' (with the '#')")
    _check_customer(_owner(row), context, what=f"order {order_id}")
    sql = (
        f"{_SELECT} WHERE entity_type = 'order_item' AND attributes->>'order_id' = %s{_LIVE} "
        "ORDER BY (attributes->>'line')::int NULLS LAST, external_id"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        items = cur.execute(sql + (" FOR UPDATE" if lock else ""), (order_id, context.tenant)).fetchall()
    return row, items


def _product(conn: psycopg.Connection, product_id: str, context: ToolContext) -> Row:
    row = _one(conn, entity_type="product", external_id=product_id, context=context, lock=False)
    if row is None:
        raise NotFoundError(f"product {product_id!r} not found; product ids differ from item ids")
    return row


def _owner(order: Row) -> str:
    attributes = order["attributes"]
    return str(attributes.get("user_id") or attributes.get("customer_id") or "")


def _check_customer(user_id: str, context: ToolContext, *, what: str | None = None) -> None:
    if context.customer_id is not None and user_id != context.customer_id:
        raise CrossCustomerAccessError(
            f"{what or 'user ' + repr(user_id)} belongs to another customer than {context.customer_id!r}; "
            "this conversation may only act for its own customer"
        )


def _fold(text: str) -> str:
    """Case- and diacritic-insensitive form of a name or email, as tau2 matches them."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# --- views -------------------------------------------------------------------------------------------------


def order_details(order: Row, items: list[Row]) -> dict[str, Any]:
    """An order the way tau2's get_order_details returns it (items nested, optional outcome fields)."""
    attributes = order["attributes"]
    details: dict[str, Any] = {
        "order_id": order["external_id"],
        "user_id": _owner(order),
        "address": attributes.get("address"),
        "items": [
            {key: item["attributes"].get(key) for key in ("name", "product_id", "item_id", "price", "options")}
            for item in items
        ],
        "status": attributes.get("status"),
        "fulfillments": attributes.get("fulfillments") or [],
        "payment_history": attributes.get("payment_history") or [],
    }
    details.update({key: attributes[key] for key in ORDER_EXTRAS if key in attributes})
    return details


def user_details(conn: psycopg.Connection, customer: Row, context: ToolContext) -> dict[str, Any]:
    """A user the way tau2's get_user_details returns it, with the ids of their orders."""
    attributes = customer["attributes"]
    sql = (
        "SELECT external_id FROM entities WHERE entity_type = 'order' AND attributes->>'customer_id' = %s"
        f"{_LIVE} ORDER BY external_id"
    )
    orders = [r[0] for r in conn.execute(sql, (customer["external_id"], context.tenant)).fetchall()]
    return {
        "user_id": customer["external_id"],
        "name": {"first_name": attributes.get("first_name"), "last_name": attributes.get("last_name")},
        "address": attributes.get("address"),
        "email": attributes.get("email"),
        "payment_methods": attributes.get("payment_methods") or {},
        "orders": orders,
    }


# --- writes ------------------------------------------------------------------------------------------------


def _write(conn: psycopg.Connection, row: Row, changes: dict[str, Any], *, tool: str) -> None:
    """Merge `changes` into the entity: into the command being captured, else the local copy at the next version."""
    change = RowChange(
        table=TABLES[row["entity_type"]],
        entity_type=row["entity_type"],
        id=row["external_id"],
        set=changes,
        expect={key: row["attributes"].get(key) for key in changes},
    )
    if commands.record(change):
        row["attributes"] = {**row["attributes"], **changes}
        return
    version = [int(v) for v in row["version"]] or [0]
    version[-1] += 1
    event = EntityEvent(
        event_id=f"agent:{tool}:{uuid.uuid4().hex}",
        source=row["source"],
        entity_type=row["entity_type"],
        external_id=row["external_id"],
        op="upsert",
        version=version,
        occurred_at=utcnow(),
        partial=True,
        attributes=changes,
        tenant=row["tenant"],
    )
    entities.apply_entities(conn, [event])
    row["attributes"] = {**row["attributes"], **changes}
    row["version"] = version


def _payment_method(customer: Row, payment_method_id: str) -> dict[str, Any]:
    methods = customer["attributes"].get("payment_methods") or {}
    if payment_method_id not in methods:
        raise RuleViolationError(
            f"payment method {payment_method_id!r} does not belong to user {customer['external_id']!r} "
            f"(theirs: {sorted(methods)}); use one of the user's own payment methods"
        )
    method: dict[str, Any] = methods[payment_method_id]
    return method


def _is_gift_card(method: dict[str, Any]) -> bool:
    return method.get("source") == "gift_card"


def _with_balance(methods: dict[str, Any], payment_method_id: str, amount: float) -> dict[str, Any]:
    """A copy of `methods` with `amount` added to one gift card's balance."""
    copy = {key: dict(value) for key, value in methods.items()}
    card = copy[payment_method_id]
    card["balance"] = round(float(card.get("balance") or 0) + amount, 2)
    return copy


def _require_status(order: Row, *, allowed: str, action: str, exact: bool = True) -> None:
    status = str(order["attributes"].get("status"))
    if (status != allowed) if exact else (allowed not in status):
        raise RuleViolationError(
            f"order {order['external_id']} is {status!r}; only {allowed!r} orders can be {action} "
            "(check the status with get_order_details)"
        )


def _check_items(order: Row, items: list[Row], item_ids: list[str]) -> None:
    have = Counter(str(item["attributes"].get("item_id")) for item in items)
    for item_id, count in Counter(item_ids).items():
        if count > have[item_id]:
            raise RuleViolationError(
                f"item {item_id} appears {count}x in the request but {have[item_id]}x in order "
                f"{order['external_id']}; use item ids (not product ids) from get_order_details"
            )


def _price_difference(
    conn: psycopg.Connection, items: list[Row], item_ids: list[str], new_item_ids: list[str], context: ToolContext
) -> tuple[float, list[dict[str, Any]]]:
    """The total price difference and the new variants, checking each is another available item of the product."""
    if len(item_ids) != len(new_item_ids):
        raise RuleViolationError(
            f"{len(item_ids)} item_ids but {len(new_item_ids)} new_item_ids; pair each item with its new item"
        )
    difference, variants = 0.0, []
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        if item_id == new_item_id:
            raise RuleViolationError(f"new item {new_item_id} is the item itself; pick a different option")
        item = next(i["attributes"] for i in items if str(i["attributes"].get("item_id")) == item_id)
        product = _product(conn, str(item["product_id"]), context)
        variant = (product["attributes"].get("variants") or {}).get(new_item_id)
        if variant is None:
            raise RuleViolationError(
                f"item {new_item_id} is not a variant of product {item['product_id']} ({item.get('name')}); "
                "items can only change to another option of the same product (see get_product_details)"
            )
        if not variant.get("available"):
            raise RuleViolationError(f"item {new_item_id} is not available; pick an available variant")
        difference += float(variant["price"]) - float(item["price"])
        variants.append(variant)
    return round(difference, 2), variants


def _check_balance(method: dict[str, Any], payment_method_id: str, amount: float) -> None:
    if _is_gift_card(method) and float(method.get("balance") or 0) < amount:
        raise RuleViolationError(
            f"gift card {payment_method_id} has balance {method.get('balance')} but {amount} is due; "
            "use another payment method"
        )


# --- tools: look-ups ---------------------------------------------------------------------------------------


def find_user_id_by_email(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """The user id of the customer with this email."""
    email = arguments["email"]
    candidates = {email.strip(), _fold(email)}
    for candidate in sorted(candidates):
        for row in entities.find_customers_by_email(conn, email=candidate):
            if row["tenant"] == context.tenant:
                _check_customer(row["external_id"], context)
                return {"user_id": row["external_id"]}
    raise NotFoundError(f"no user with email {email!r}; ask the customer for name and zip code instead")


def find_user_id_by_name_zip(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """The user id of the customer with this first name, last name and zip code."""
    first, last, zip_code = _fold(arguments["first_name"]), _fold(arguments["last_name"]), arguments["zip"].strip()
    sql = f"{_SELECT} WHERE entity_type = 'customer' AND attributes->'address'->>'zip' = %s{_LIVE} ORDER BY external_id"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, (zip_code, context.tenant)).fetchall()
    for row in rows:
        attributes = row["attributes"]
        names = _fold(str(attributes.get("first_name", ""))), _fold(str(attributes.get("last_name", "")))
        if names == (first, last):
            _check_customer(row["external_id"], context)
            return {"user_id": row["external_id"]}
    raise NotFoundError(
        f"no user named {arguments['first_name']} {arguments['last_name']} in zip {zip_code!r}; "
        "check the spelling or ask for the email"
    )


def get_user_details(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """The user's profile, payment methods and order ids."""
    return user_details(conn, _customer(conn, arguments["user_id"], context), context)


def get_order_details(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """The order's status, items, fulfilments and payments."""
    return order_details(*_order(conn, arguments["order_id"], context))


def get_product_details(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """The product's name and variants (options, availability, price)."""
    row = _product(conn, arguments["product_id"], context)
    attributes = row["attributes"]
    return {"name": attributes.get("name"), "product_id": row["external_id"], "variants": attributes.get("variants")}


def get_item_details(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """One variant item by item id, with the product it belongs to."""
    item_id = arguments["item_id"]
    sql = f"{_SELECT} WHERE entity_type = 'product' AND attributes->'variants' ? %s{_LIVE} LIMIT 1"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql, (item_id, context.tenant)).fetchone()
    if row is None:
        raise NotFoundError(f"item {item_id!r} not found; item ids differ from product ids")
    return {**row["attributes"]["variants"][item_id], "product_id": row["external_id"]}


def list_all_product_types(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Every product name with its product id."""
    sql = f"SELECT attributes->>'name', external_id FROM entities WHERE entity_type = 'product'{_LIVE} ORDER BY 1"
    return {"product_types": dict(conn.execute(sql, (context.tenant,)).fetchall())}


def calculate(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """The value of an arithmetic expression (numbers, + - * /, parentheses), rounded to 2 decimals."""
    expression = arguments["expression"]
    try:
        value = _evaluate(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError) as exc:
        raise InvalidToolArgumentsError(
            f"expression {expression!r} cannot be calculated ({exc}); use numbers, + - * / and parentheses"
        ) from exc
    return {"result": str(round(float(value), 2))}


_OPERATORS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return float(_OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return float(_OPERATORS[type(node.op)](_evaluate(node.operand)))
    raise ValueError(f"unsupported element {ast.dump(node)[:60]}")


# --- tools: changes ----------------------------------------------------------------------------------------


def cancel_pending_order(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Cancel a pending order and refund its payments (gift cards immediately)."""
    order_id, reason = arguments["order_id"], arguments["reason"]
    order, items = _order(conn, order_id, context, lock=True)
    _require_status(order, allowed="pending", action="cancelled")
    if reason not in CANCEL_REASONS:
        raise RuleViolationError(f"reason {reason!r} is not accepted; use one of {list(CANCEL_REASONS)}")
    net: dict[str, float] = {}
    for payment in order["attributes"].get("payment_history") or []:
        sign = 1 if payment["transaction_type"] == "payment" else -1
        net[payment["payment_method_id"]] = net.get(payment["payment_method_id"], 0.0) + sign * float(payment["amount"])
    refunds: list[dict[str, Any]] = [
        {"transaction_type": "refund", "amount": round(amount, 2), "payment_method_id": method_id}
        for method_id, amount in net.items()
        if round(amount, 2) > 0
    ]
    customer = _customer(conn, _owner(order), context, lock=True)
    methods = customer["attributes"].get("payment_methods") or {}
    gift_card_refunds = [r for r in refunds if _is_gift_card(methods.get(r["payment_method_id"], {}))]
    for refund in gift_card_refunds:
        methods = _with_balance(methods, refund["payment_method_id"], refund["amount"])
    if gift_card_refunds:
        _write(conn, customer, {"payment_methods": methods}, tool="cancel_pending_order")
    history = (order["attributes"].get("payment_history") or []) + refunds
    _write(
        conn,
        order,
        {"status": "cancelled", "cancel_reason": reason, "payment_history": history},
        tool="cancel_pending_order",
    )
    return order_details(order, items)


def _address(arguments: dict[str, Any]) -> dict[str, str]:
    return {key: arguments[key] for key in ("address1", "address2", "city", "country", "state", "zip")}


def modify_pending_order_address(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Change the shipping address of a pending order."""
    order, items = _order(conn, arguments["order_id"], context, lock=True)
    _require_status(order, allowed="pending", action="modified", exact=False)
    _write(conn, order, {"address": _address(arguments)}, tool="modify_pending_order_address")
    return order_details(order, items)


def modify_pending_order_payment(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Pay a pending order with another of the user's payment methods, refunding the original one."""
    order_id, payment_method_id = arguments["order_id"], arguments["payment_method_id"]
    order, items = _order(conn, order_id, context, lock=True)
    _require_status(order, allowed="pending", action="modified", exact=False)
    customer = _customer(conn, _owner(order), context, lock=True)
    method = _payment_method(customer, payment_method_id)
    history = order["attributes"].get("payment_history") or []
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        raise RuleViolationError(
            f"order {order_id} has {len(history)} payment records; the payment can only change while there is "
            "exactly one payment (transfer to a human agent)"
        )
    original, amount = history[0]["payment_method_id"], float(history[0]["amount"])
    if original == payment_method_id:
        raise RuleViolationError(f"order {order_id} is already paid with {payment_method_id}; pick another method")
    _check_balance(method, payment_method_id, amount)
    methods = customer["attributes"].get("payment_methods") or {}
    refund_to_gift_card = _is_gift_card(methods.get(original, {}))
    if _is_gift_card(method):
        methods = _with_balance(methods, payment_method_id, -amount)
    if refund_to_gift_card:
        methods = _with_balance(methods, original, amount)
    if _is_gift_card(method) or refund_to_gift_card:
        _write(conn, customer, {"payment_methods": methods}, tool="modify_pending_order_payment")
    history = [
        *history,
        {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
        {"transaction_type": "refund", "amount": amount, "payment_method_id": original},
    ]
    _write(conn, order, {"payment_history": history}, tool="modify_pending_order_payment")
    return order_details(order, items)


class _ItemChange(NamedTuple):
    order: Row
    items: list[Row]
    difference: float
    variants: list[dict[str, Any]]
    customer: Row
    method: dict[str, Any]


def _item_change(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext, *, status: str, action: str, lock: bool
) -> _ItemChange:
    """An order's items changing for other variants, checked: the order's status, its items, the payment method's
    balance for the price difference (the customer row locked with `lock`)."""
    payment_method_id, item_ids = arguments["payment_method_id"], arguments["item_ids"]
    order, items = _order(conn, arguments["order_id"], context, lock=True)
    _require_status(order, allowed=status, action=action)
    _check_items(order, items, item_ids)
    difference, variants = _price_difference(conn, items, item_ids, arguments["new_item_ids"], context)
    customer = _customer(conn, _owner(order), context, lock=lock)
    method = _payment_method(customer, payment_method_id)
    _check_balance(method, payment_method_id, difference)
    return _ItemChange(order, items, difference, variants, customer, method)


def modify_pending_order_items(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Swap items of a pending order for other options of the same products (once per order)."""
    payment_method_id, item_ids = arguments["payment_method_id"], arguments["item_ids"]
    change = _item_change(
        conn, arguments, context, status="pending", action="modified (items change once per order)", lock=True
    )
    order, items, difference, variants, customer, method = change
    if _is_gift_card(method):
        methods = _with_balance(customer["attributes"]["payment_methods"], payment_method_id, -difference)
        _write(conn, customer, {"payment_methods": methods}, tool="modify_pending_order_items")
    changed: set[int] = set()
    for item_id, variant in zip(item_ids, variants, strict=True):
        line = next(
            n for n, i in enumerate(items) if n not in changed and str(i["attributes"].get("item_id")) == item_id
        )
        changed.add(line)
        new = {"item_id": variant["item_id"], "price": variant["price"], "options": variant["options"]}
        _write(conn, items[line], new, tool="modify_pending_order_items")
    payment = {
        "transaction_type": "payment" if difference > 0 else "refund",
        "amount": abs(difference),
        "payment_method_id": payment_method_id,
    }
    changes: dict[str, Any] = {
        "status": "pending (item modified)",
        "payment_history": [*(order["attributes"].get("payment_history") or []), payment],
    }
    if "total" in order["attributes"]:
        changes["total"] = round(sum(float(i["attributes"]["price"]) for i in items), 2)
    _write(conn, order, changes, tool="modify_pending_order_items")
    return order_details(order, items)


def modify_user_address(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Change the user's default address."""
    customer = _customer(conn, arguments["user_id"], context, lock=True)
    _write(conn, customer, {"address": _address(arguments)}, tool="modify_user_address")
    return user_details(conn, customer, context)


def return_delivered_order_items(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Request the return of items of a delivered order, refunded to the original method or a gift card."""
    order_id, payment_method_id, item_ids = arguments["order_id"], arguments["payment_method_id"], arguments["item_ids"]
    order, items = _order(conn, order_id, context, lock=True)
    _require_status(order, allowed="delivered", action="returned")
    customer = _customer(conn, _owner(order), context)
    method = _payment_method(customer, payment_method_id)
    history = order["attributes"].get("payment_history") or []
    original = history[0]["payment_method_id"] if history else None
    if not _is_gift_card(method) and payment_method_id != original:
        raise RuleViolationError(
            f"refunds of order {order_id} go to the original payment method {original} or a gift card, "
            f"not {payment_method_id}"
        )
    _check_items(order, items, item_ids)
    changes = {
        "status": "return requested",
        "return_items": sorted(item_ids),
        "return_payment_method_id": payment_method_id,
    }
    _write(conn, order, changes, tool="return_delivered_order_items")
    return order_details(order, items)


def exchange_delivered_order_items(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Request the exchange of delivered items for other available options of the same products (once)."""
    change = _item_change(conn, arguments, context, status="delivered", action="exchanged", lock=False)
    changes = {
        "status": "exchange requested",
        "exchange_items": sorted(arguments["item_ids"]),
        "exchange_new_items": sorted(arguments["new_item_ids"]),
        "exchange_payment_method_id": arguments["payment_method_id"],
        "exchange_price_difference": change.difference,
    }
    _write(conn, change.order, changes, tool="exchange_delivered_order_items")
    return order_details(change.order, change.items)


def transfer_to_human_agents(
    conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Transfer the user to a human agent with a summary of the issue (only when the tools cannot solve it)."""
    if context.ticket_source is not None and context.ticket_id is not None:
        desk.record_ticket_event(
            conn,
            context,
            tool="transfer_to_human_agents",
            event_type="updated",
            add_tags=("human-handoff",),
            metadata={"handoff_summary": arguments["summary"]},
        )
    return {"result": "Transfer successful", "message_to_user": HANDOFF_MESSAGE}


# --- definitions -------------------------------------------------------------------------------------------


def _string(description: str, *, pattern: str | None = None, max_length: int = 100) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description}
    if pattern:
        schema["pattern"] = pattern
    else:
        schema["maxLength"] = max_length
    return schema


ORDER_ID = _string("The order id, such as '#W0000000' (with the '#').", pattern="^#W[0-9]{7}$")
USER_ID = _string("The user id, such as 'sara_doe_496'.", pattern="^[a-z]+_[a-z]+_[0-9]+$")
PRODUCT_ID = _string("The product id, such as '6086499569' (not an item id).", pattern="^[0-9]{10}$")
ITEM_ID = _string("The item id, such as '1008292230' (not a product id).", pattern="^[0-9]{10}$")
PAYMENT_METHOD_ID = _string(
    "The payment method id, such as 'gift_card_0000000' or 'credit_card_0000000'.",
    pattern="^(gift_card|credit_card|paypal)_[0-9]+$",
)
NUMBER = "[(]*-?[0-9]{1,9}([.][0-9]{1,4})?[)]*"
EXPRESSION = f"^{NUMBER}( ?[-+*/] ?{NUMBER})*$"
ITEM_IDS = {"type": "array", "items": ITEM_ID, "minItems": 1, "maxItems": 10, "description": "Item ids."}
ADDRESS = {
    "address1": _string("First address line, such as '123 Main St'."),
    "address2": _string("Second address line, such as 'Apt 1' or ''."),
    "city": _string("The city, such as 'San Francisco'."),
    "country": _string("The country, such as 'USA'."),
    "state": _string("The state, such as 'CA'."),
    "zip": _string("The zip code, such as '12345'.", pattern="^[0-9]{5}(-[0-9]{4})?$"),
}


def _tool(handler: Any, parameters: dict[str, Any], *, kind: ToolKind = "read", high_risk: bool = False) -> Tool:
    """A retail tool; its writes are commands to the ERP."""
    return Tool(
        name=handler.__name__,
        description=handler.__doc__.strip(),
        parameters=arguments_schema(parameters),
        kind=kind,
        handler=handler,
        high_risk=high_risk,
        effect="command" if kind == "write" else "local",
        system=SYSTEM if kind == "write" else "",
    )


RETAIL_TOOLS: tuple[Tool, ...] = (
    _tool(
        find_user_id_by_email,
        {"email": _string("The email, such as 'something@example.com'.", pattern="^[^@ ]+@[^@ ]+\\.[A-Za-z]+$")},
    ),
    _tool(
        find_user_id_by_name_zip,
        {
            "first_name": _string("First name, such as 'John'.", max_length=40),
            "last_name": _string("Last name, such as 'Doe'.", max_length=40),
            "zip": ADDRESS["zip"],
        },
    ),
    _tool(get_user_details, {"user_id": USER_ID}),
    _tool(get_order_details, {"order_id": ORDER_ID}),
    _tool(get_product_details, {"product_id": PRODUCT_ID}),
    _tool(get_item_details, {"item_id": ITEM_ID}),
    _tool(list_all_product_types, {}),
    _tool(calculate, {"expression": _string("Arithmetic such as '2 + 2'.", pattern=EXPRESSION)}),
    _tool(
        cancel_pending_order,
        {"order_id": ORDER_ID, "reason": {"enum": list(CANCEL_REASONS), "description": "Why the order is cancelled."}},
        kind="write",
        high_risk=True,
    ),
    _tool(modify_pending_order_address, {"order_id": ORDER_ID, **ADDRESS}, kind="write", high_risk=True),
    _tool(
        modify_pending_order_items,
        {"order_id": ORDER_ID, "item_ids": ITEM_IDS, "new_item_ids": ITEM_IDS, "payment_method_id": PAYMENT_METHOD_ID},
        kind="write",
        high_risk=True,
    ),
    _tool(
        modify_pending_order_payment,
        {"order_id": ORDER_ID, "payment_method_id": PAYMENT_METHOD_ID},
        kind="write",
        high_risk=True,
    ),
    _tool(modify_user_address, {"user_id": USER_ID, **ADDRESS}, kind="write", high_risk=True),
    _tool(
        return_delivered_order_items,
        {"order_id": ORDER_ID, "item_ids": ITEM_IDS, "payment_method_id": PAYMENT_METHOD_ID},
        kind="write",
        high_risk=True,
    ),
    _tool(
        exchange_delivered_order_items,
        {"order_id": ORDER_ID, "item_ids": ITEM_IDS, "new_item_ids": ITEM_IDS, "payment_method_id": PAYMENT_METHOD_ID},
        kind="write",
        high_risk=True,
    ),
)
"""The τ²-bench retail tool set but the hand-off."""
HANDOFF = Tool(
    name="transfer_to_human_agents",
    description=str(transfer_to_human_agents.__doc__),
    parameters=arguments_schema({"summary": desk.text_argument("A summary of the user's issue.", 1000)}),
    kind="write",
    handler=transfer_to_human_agents,
)
TOOLS: tuple[Tool, ...] = (*RETAIL_TOOLS, HANDOFF)
"""The pack's tools: the τ²-bench retail tools and the hand-off to a human."""
