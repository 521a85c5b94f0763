"""What the retail conversation knows: the ids its trusted tool results established, narrowing each id argument.

Orders by the status the tool needs (the retail policy's status rules), items of those orders, available
variants, the user's payment methods; an item change is one grammar choice per set of items of one order.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamdesk.agent.knowledge_tool import SEARCH_TOOL
from streamdesk.domains.retail import intents

AUTH_TOOLS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
ORDER_STATUS: dict[str, Callable[[str], bool]] = {
    "cancel_pending_order": lambda status: status == "pending",
    "modify_pending_order_items": lambda status: status == "pending",
    "modify_pending_order_address": lambda status: status.startswith("pending"),
    "modify_pending_order_payment": lambda status: status.startswith("pending"),
    "return_delivered_order_items": lambda status: status == "delivered",
    "exchange_delivered_order_items": lambda status: status == "delivered",
}
"""Which orders each order tool can act on (the retail policy's status rules)."""


def order_statuses(found: intents.TicketFeatures) -> Callable[[str], bool] | None:
    """Which order statuses the ticket's intents can act on (None: any, e.g. tracking or no intent found)."""
    tools = [intents.INTENT_TOOL[intent] for intent in found.intents]
    if not tools or any(tool not in ORDER_STATUS for tool in tools):
        return None
    fits = [ORDER_STATUS[tool] for tool in tools]
    return lambda status: any(fit(status) for fit in fits)


@dataclass
class Known:
    """Ids the conversation's trusted tool results established, and what was fetched already."""

    user_ids: list[str] = field(default_factory=list)
    fetched_users: set[str] = field(default_factory=set)
    order_ids: list[str] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    product_ids: list[str] = field(default_factory=list)
    payment_method_ids: list[str] = field(default_factory=list)
    named_orders: list[str] = field(default_factory=list)
    searched: bool = False
    text: str = ""
    """The ticket's text: items it names by product name narrow the item lists."""

    def add(self, result: Any) -> None:
        """Learn the ids of one tool result."""
        if not isinstance(result, dict):
            return
        user_id = result.get("user_id")
        if isinstance(user_id, str) and user_id not in self.user_ids:
            self.user_ids.append(user_id)
        if isinstance(result.get("payment_methods"), dict):
            self.fetched_users.add(str(user_id))
            self.payment_method_ids += [m for m in result["payment_methods"] if m not in self.payment_method_ids]
            self.order_ids += [o for o in result.get("orders") or [] if o not in self.order_ids]
        if isinstance(result.get("items"), list) and isinstance(result.get("order_id"), str):
            self.orders[result["order_id"]] = result
            if result["order_id"] not in self.order_ids:
                self.order_ids.append(result["order_id"])
            for item in result["items"]:
                product_id = str(item.get("product_id"))
                if product_id not in self.product_ids:
                    self.product_ids.append(product_id)
        if isinstance(result.get("variants"), dict) and isinstance(result.get("product_id"), str):
            self.products[result["product_id"]] = result
        if "passages" in result:
            self.searched = True

    def order_choices(self, tool: str) -> list[str]:
        """Orders `tool` may name: fetched ones of the right status; for get_order_details, unfetched ones.

        When the ticket names its orders, get_order_details is limited to those.
        """
        if tool == "get_order_details":
            candidates = self.named_orders or self.order_ids
            return [order_id for order_id in candidates if order_id not in self.orders]
        fits = ORDER_STATUS.get(tool, lambda status: True)
        return [order_id for order_id, order in self.orders.items() if fits(str(order.get("status") or ""))]

    def _lines(self, tool: str) -> tuple[list[str], set[str]]:
        """The item ids of every line of the orders `tool` may name, and those the ticket names by product name."""
        orders = [self.orders[o] for o in self.order_choices(tool)]
        lines = [str(item.get("item_id")) for order in orders for item in order["items"]]
        return lines, set(intents.named_items(self.text, orders))

    def item_choices(self, tool: str) -> list[str]:
        """Item ids in the orders `tool` may name; only those the ticket names by product name, if it names any."""
        lines, named = self._lines(tool)
        items = list(dict.fromkeys(lines))
        return [item for item in items if item in named] or items

    def order_items(self, tool: str, order_id: str) -> list[str]:
        """Item ids of the lines of one order `tool` may name: those of named items if the ticket names any.

        An item ordered twice is listed twice.
        """
        _, named = self._lines(tool)
        items = [str(item.get("item_id")) for item in self.orders[order_id]["items"]]
        return [item for item in items if item in named] if named else items

    def new_items(self, order_id: str, item_id: str) -> list[str]:
        """Available variants of an item's product other than the item itself (empty: product not fetched)."""
        lines: list[dict[str, Any]] = self.orders[order_id]["items"]
        item = next((line for line in lines if str(line.get("item_id")) == item_id), {})
        product = self.products.get(str(item.get("product_id")), {})
        return [
            variant_id
            for variant_id, variant in (product.get("variants") or {}).items()
            if isinstance(variant, dict) and variant.get("available") and variant_id != item_id
        ]

    def item_limit(self, tool: str) -> int:
        """How many order lines an item list of `tool` can name: the named lines, else all lines of its orders."""
        lines, named = self._lines(tool)
        return max(1, sum(line in named for line in lines) or len(lines))

    def product_choices(self) -> list[str]:
        """Products still to fetch: of the items the ticket names, if it names any, else of every fetched order."""
        named = intents.named_products(self.text, list(self.orders.values()))
        return [p for p in named or self.product_ids if p not in self.products]

    def variant_choices(self) -> list[str]:
        """Available variants of the fetched products."""
        found = [
            item_id
            for product in self.products.values()
            for item_id, variant in (product.get("variants") or {}).items()
            if isinstance(variant, dict) and variant.get("available")
        ]
        return list(dict.fromkeys(found))

    def spent(self, tool: str) -> bool:
        """True for the authentication look-ups once the user is known, and for a search once made."""
        return (tool in AUTH_TOOLS and bool(self.user_ids)) or (tool == SEARCH_TOOL and self.searched)

    def choices(self, tool: str, argument: str) -> list[str] | None:
        """The values `argument` of `tool` may take, or None when it is not an id argument."""
        return _choices(tool, argument, self)

    def branches(self, tool: str, properties: dict[str, Any]) -> list[dict[str, Any]] | None:
        """For a tool naming an order and its items: one schema per (order, set of its items); else None."""
        if not {"order_id", "item_ids"} <= set(properties):
            return None
        return _item_branches(tool, properties, self)


def known_values(
    results: Sequence[Any], *, named_orders: Sequence[str] = (), searched: bool = False, text: str = ""
) -> Known:
    """What a conversation's trusted tool results establish (and the orders and items its ticket `text` names)."""
    known = Known(named_orders=list(named_orders), searched=searched, text=text)
    for result in results:
        known.add(result)
    return known


def known_for(results: Sequence[Any], *, found: intents.TicketFeatures, searched: bool) -> Known:
    """What a ticket's trusted results establish, with the orders and items its text names (the pack's `known`)."""
    return known_values(results, named_orders=found.order_ids, text=found.text, searched=searched)


def _choices(tool: str, argument: str, known: Known) -> list[str] | None:
    """The values `argument` of `tool` may take, or None when it is not an id argument."""
    if argument == "order_id":
        return known.order_choices(tool)
    if argument == "user_id":
        return [u for u in known.user_ids if tool != "get_user_details" or u not in known.fetched_users]
    if argument == "item_ids":
        return known.item_choices(tool)
    if argument == "new_item_ids":
        return known.variant_choices()
    if argument == "product_id":
        return known.product_choices()
    if argument == "payment_method_id":
        return list(known.payment_method_ids)
    if argument == "item_id":
        return [str(item.get("item_id")) for order in known.orders.values() for item in order["items"]]
    return None


MAX_COMBINATION_ITEMS = 5
"""Orders with at most this many candidate items get one grammar choice per set of items (no repeats)."""
MAX_ITEM_BRANCHES = 32


def _item_branches(tool: str, properties: dict[str, Any], known: Known) -> list[dict[str, Any]] | None:
    """One arguments schema per (order, set of its items) for a tool with `order_id` and `item_ids`.

    A flat schema lets a small model repeat an item id until the list is full, and name items of another
    order; here each choice is a set of distinct items of one order, and each new item (exchanges,
    modifications) is a variant of the product of the item at its position. None: too many choices
    (the flat narrowing applies then).
    """
    branches: list[dict[str, Any]] = []
    for order_id in known.order_choices(tool):
        items = known.order_items(tool, order_id)
        if len(items) > MAX_COMBINATION_ITEMS:
            return None
        combinations = (list(c) for size in range(1, len(items) + 1) for c in itertools.combinations(items, size))
        sets = list({json.dumps(c): c for c in combinations}.values())
        if "new_item_ids" not in properties:
            if sets:
                branches.append(_branch(properties, order_id=order_id, item_ids={"enum": sets}))
            continue
        for chosen in sets:
            variants = [known.new_items(order_id, item) for item in chosen]
            if all(variants):
                new = {
                    "type": "array",
                    "prefixItems": [{"enum": choices} for choices in variants],
                    "minItems": len(chosen),
                    "maxItems": len(chosen),
                }
                branches.append(_branch(properties, order_id=order_id, item_ids={"const": chosen}, new_item_ids=new))
    return branches if len(branches) <= MAX_ITEM_BRANCHES else None


def _branch(properties: dict[str, Any], *, order_id: str, **replaced: dict[str, Any]) -> dict[str, Any]:
    branch = {name: replaced.get(name, schema) for name, schema in properties.items()}
    branch["order_id"] = {"const": order_id}
    return {"type": "object", "properties": branch, "required": list(branch), "additionalProperties": False}
