"""The writes the retail rules propose once their reads are back: explicit requests carried out with correct arguments.

The second stage of the router's plan (reads -> results -> writes). Every argument comes from the ticket's
text matched against trusted tool results: the orders and items it names (fuzzy, `rapidfuzz`), the options
it wants among the product's available variants, the payment method it names, a free-text US address
(`usaddress`) completed from the current one. A request the rules cannot resolve to one clear set of
arguments proposes nothing (the model and the reply take over); the loop holds a change until the customer confirms it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import usaddress

from streamdesk.agent import conversations
from streamdesk.agent.models import ToolCall
from streamdesk.agent.packs import History
from streamdesk.domains.retail import intents
from streamdesk.domains.retail.intents import TicketFeatures, mentions, names_item

HANDOFF_SUMMARY_CHARS = 200
EXCEPT = re.compile(
    r"\b(?:except(?: for)?|but not|other than|apart from|everything but|all but|not (?:associated|related|connected)"
    r" (?:with|to)|unrelated to)\b",
    re.I,
)
SWAPS = frozenset({"exchange_delivered_order_items", "return_delivered_order_items"})
"""A delivered order takes one of these, once."""
PREFERS = re.compile(r"\bprefer(?:red|s)?\b[^.?!]{0,30}?\b(?P<what>exchang|return)\w*", re.I)
"""'I prefer to do the exchange': which change wins when a delivered order can take only one."""
EXTREME = re.compile(
    r"\b(cheapest|priciest|maximum|max|largest|biggest|highest|most expensive|minimum|min|smallest|lowest|least)\b",
    re.I,
)
MOST = frozenset({"priciest", "maximum", "max", "largest", "biggest", "highest", "most expensive"})
PLACE_ALIASES = {"nyc": "new york", "la": "los angeles", "dc": "washington", "sf": "san francisco"}
"""Short place names customers use for the cities on their addresses."""
TO_DEFAULT = re.compile(r"\bto (?:my |your |the )?(?:default|profile|account|user)(?: \w+)? address\b", re.I)
TO_PLACE = re.compile(r"\b(?:to|the) (?:my |your |the )?(?P<place>(?:[A-Z][A-Za-z]+ ?){1,3}) (?:address|home|house)\b")
PLACE_ORDER = re.compile(r"\b(?:my|your|the) (?P<place>(?:[A-Za-z]+ ?){1,2}) order\b")
ORDER_WORD = re.compile(r"\border\b", re.I)
ALL_ORDERS = re.compile(r"\ball (?:of )?(?:my |your |the |possible )?(?:pending )?order", re.I)
ALL_ITEMS = re.compile(r"\b(everything|all (the )?(items|things|of it|of them)|whole order|entire order)\b", re.I)
WHOLE_ORDER = re.compile(r"\b(?:whole|entire|full) order\b", re.I)
MISTAKE = re.compile(r"\b(by mistake|mistaken\w*|accident\w*|wrong(ly)?)\b", re.I)
DEFAULT_ADDRESS = re.compile(r"\b(default|profile|account|user)\b[^.?!]{0,20}\baddress\b", re.I)
ORIGINAL_PAYMENT = re.compile(r"\boriginal (payment|card|method)\b", re.I)
REFUND_TO = re.compile(r"\brefund\w*\b[^.?!]{0,20}?\b(?:to|on|onto|into|via)\b(?P<what>[^.?!,;]{1,40})", re.I)
"""'refund to my amex credit card': the kind of payment method a refund is asked to go to."""
METHOD_KINDS = (
    ("original", re.compile(r"\boriginal\b", re.I)),
    ("gift_card", re.compile(r"\bgift ?card\b|\bgc\b", re.I)),
    ("paypal", re.compile(r"\bpay ?pal\b", re.I)),
    (
        "credit_card",
        re.compile(r"\b(?:credit|debit)? ?card\b|\b(?:visa|mastercard|amex|american express|discover)\b", re.I),
    ),
)
"""The kinds of payment method customers name (the `source` of a user's methods), 'original' first."""
METHOD_ALIASES = {"gift card": ("gc",)}
"""Short names customers use for a kind of payment method ('refund to GC')."""
NEGATED_OR_CONDITIONAL = re.compile(r"\b(?:not|don'?t|never|no|cannot|can'?t|if|unless|otherwise)\b", re.I)
SEGMENT = re.compile(r"(?<=[.!?;])\s+|\n+|\s*[()\u2014]\s*|\s+-\s+")
STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
    "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX",
    "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV",
    "wisconsin": "WI", "wyoming": "WY", "district of columbia": "DC",
}  # fmt: skip
"""US state names -> the two-letter codes addresses carry."""
_STREET = ("AddressNumber", "StreetNamePreDirectional", "StreetName", "StreetNamePostType", "StreetNamePostDirectional")
_UNIT = ("OccupancyType", "OccupancyIdentifier")


@dataclass(frozen=True)
class World:
    """What the trusted reads established: the user, their orders and the products fetched."""

    user_id: str | None
    user: dict[str, Any]
    orders: dict[str, dict[str, Any]]
    products: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, history: History) -> World:
        """The user, orders and products the reads in `history` returned (the latest of each wins).

        The results of writes are left out: the plan is made from the state the reads found, so a write
        carried out (an order now 'return requested') never changes what the rest of the plan means.
        """
        user: dict[str, Any] = {}
        orders: dict[str, dict[str, Any]] = {}
        products: dict[str, dict[str, Any]] = {}
        for call, result in history:
            if not isinstance(result, dict):
                continue
            if call.tool == "get_user_details":
                user = result
            elif call.tool == "get_order_details" and isinstance(result.get("items"), list):
                orders[str(result["order_id"])] = result
            elif call.tool == "get_product_details" and result.get("product_id"):
                products[str(result["product_id"])] = result
        user_id = user.get("user_id") or intents.found_user(history)
        return cls(user_id=str(user_id) if user_id else None, user=user, orders=orders, products=products)

    def with_status(self, status: str) -> list[dict[str, Any]]:
        """The orders whose status is `status` (exactly)."""
        return [order for order in self.orders.values() if order.get("status") == status]


def _holds(order: dict[str, Any], text: str) -> bool:
    return any(names_item(text, str(item.get("name") or "")) for item in order.get("items") or [])


def named_lines(text: str, orders: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(order, item) for each order line whose item the text names, or every line when it says 'everything',
    less those it names after 'except'. An order in which the text names two lines of one product gives none
    (which one is meant is unclear); 'everything except X' means the order that holds X."""
    wanted, *rest = EXCEPT.split(text, maxsplit=1)
    unwanted = rest[0] if rest else ""
    every = bool(ALL_ITEMS.search(wanted) or re.search(r"\beverything but\b", text, re.I))
    if every and unwanted:  # "everything but the coffee machine": the order the coffee machine came in
        holding = [order for order in orders if _holds(order, unwanted)]
        if not holding:  # "everything not associated with gaming": which items are meant is unclear
            return []
        orders = holding
    lines = []
    for order in orders:
        own = [
            item
            for item in order.get("items") or []
            if (every or names_item(wanted, str(item.get("name") or "")))
            and not (unwanted and names_item(unwanted, str(item.get("name") or "")))
        ]
        products = [str(item.get("product_id")) for item in own]
        if every or len(products) == len(set(products)):
            lines += [(order, item) for item in own]
    return lines


def _one_order(lines: list[tuple[dict[str, Any], dict[str, Any]]], found: TicketFeatures) -> list[Any]:
    """The lines of the one order they fall in (the order the ticket names when they fall in several)."""
    orders = list(dict.fromkeys(str(order["order_id"]) for order, _ in lines))
    if len(orders) > 1:
        orders = [order_id for order_id in orders if order_id in found.order_ids]
    if len(orders) != 1:
        return []
    return [(order, item) for order, item in lines if order["order_id"] == orders[0]]


def payment_method(text: str, user: dict[str, Any], *, exclude: str | None = None) -> str | None:
    """The user's payment method the text names ('PayPal', 'gift card' or 'GC', 'credit card ending 1234', 'visa')."""
    methods = user.get("payment_methods") or {}
    named = []
    for method_id, method in methods.items():
        if method_id == exclude or not isinstance(method, dict):
            continue
        source = str(method.get("source") or "").replace("_", " ")
        details = [str(method[key]) for key in ("brand", "last_four") if method.get(key)]
        names = [source, *METHOD_ALIASES.get(source, ())] if source else []
        if any(mentions(text, detail) for detail in details) or any(mentions(text, name) for name in names):
            named.append(method_id)
    specific = [m for m in named if any(mentions(text, str(methods[m].get(k) or "-")) for k in ("brand", "last_four"))]
    chosen = specific or named
    return chosen[0] if len(chosen) == 1 else None


def original_method(order: dict[str, Any]) -> str | None:
    """The payment method the order was paid with (its first payment)."""
    for payment in order.get("payment_history") or []:
        if payment.get("transaction_type") == "payment":
            return str(payment.get("payment_method_id"))
    return None


def _asked(text: str, value: str) -> float:
    """How much of an option value the text names: 1 for all of it, the share of its words named otherwise."""
    if mentions(text, value):
        return 1.0
    words = value.split()
    return sum(mentions(text, word) for word in words if len(word) > 2) / len(words) if len(words) > 1 else 0.0


def _flag(text: str, key: str) -> str | None:
    """What the text asks of a yes/no option named `key`: 'yes' ('a waterproof variant'), 'no' ('not waterproof',
    'non-waterproof'), or None (not named, or 'do not care about waterproof or not')."""
    normal = " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("-", " ")))
    found = None
    for match in re.finditer(rf"\b{re.escape(key.lower())}\b", normal):
        before, after = normal[max(match.start() - 30, 0) : match.start()], normal[match.end() : match.end() + 10]
        if re.search(r"\b(care|matter|whether|either)\b", before) or re.match(r"\s*or not\b", after):
            return None
        found = "no" if re.search(r"\b(not|non|no|without|never)\s+(\w+\s+)?$", before) else "yes"
    return found


def _option_asked(text: str, key: str, value: str) -> float:
    """How much of the new `value` of option `key` the text names; a yes/no option by its name ('waterproof')."""
    if value.lower() in ("yes", "no"):
        return 1.0 if _flag(text, key) == value.lower() else 0.0
    return _asked(text, value)


def _number(value: str) -> float | None:
    match = re.search(r"\d+(?:\.\d+)?", value)
    return float(match.group(0)) if match else None


def _extreme(text: str, options: Sequence[str]) -> tuple[str, int] | None:
    """The option the text wants at its extreme ('maximum zoom' -> ('zoom', +1)), or the price ('cheapest')."""
    for match in EXTREME.finditer(text):
        direction = 1 if match.group(1).lower() in MOST else -1
        following = text[match.end() : match.end() + 30]
        named = [option for option in options if mentions(following, option)]
        if named:
            return named[0], direction
        if mentions(following, "price") or match.group(1).lower() in ("cheapest", "priciest"):
            return "price", direction
    return None


def wanted_variant(text: str, item: dict[str, Any], product: dict[str, Any]) -> str | None:
    """The available variant of `product` whose changed options the text names best, fewest others changed.

    Each option a variant changes scores how much of its new value the ticket names ('Google Home' names
    half of 'Google Assistant'); variants rank by that sum, then by how few options they change unasked.
    A superlative ('the cheapest', 'maximum zoom') picks the extreme among the best-ranked (or, with nothing
    else asked, among the variants that change only that option). The single best variant wins (None: a tie,
    or nothing asked).
    """
    current = item.get("options") or {}
    extreme = _extreme(text, list(current))
    scored: list[tuple[float, int, str, dict[str, Any]]] = []
    for item_id, variant in (product.get("variants") or {}).items():
        if not isinstance(variant, dict) or not variant.get("available") or item_id == str(item.get("item_id")):
            continue
        changed = {key: _option_asked(text, key, str(value)) for key, value in (variant.get("options") or {}).items()
                   if current.get(key) != value}  # fmt: skip
        if extreme is not None and extreme[0] in changed:
            changed[extreme[0]] = 1.0
        scored.append((sum(changed.values()), -sum(share == 0 for share in changed.values()), str(item_id), variant))
    if not scored:
        return None
    best = max(score[:2] for score in scored)
    winners = [score for score in scored if score[:2] == best]
    if extreme is not None and (best[0] > 0 or extreme[0] == "price"):
        key, direction = extreme

        def measure(variant: dict[str, Any]) -> float | None:
            value = variant.get("price") if key == "price" else (variant.get("options") or {}).get(key)
            return _number(str(value)) if value is not None else None

        pool = winners if best[0] > 0 else scored
        values = [(measure(score[3]), score[2]) for score in pool]
        known = [(value * direction, item_id) for value, item_id in values if value is not None]
        top = max((value for value, _ in known), default=None)
        chosen = [item_id for value, item_id in known if value == top]
        return chosen[0] if len(chosen) == 1 else None
    return winners[0][2] if best[0] > 0 and len(winners) == 1 else None


def _state(value: str) -> str:
    return STATES.get(value.lower().strip(" ,."), value.upper().strip(" ,."))


def parse_address(text: str) -> dict[str, str]:
    """The address parts a free-text US address in `text` gives (`usaddress`): address1, address2, city, state, zip.

    Only a run of tokens that starts with a street number or a unit ('Suite 641') and names a capitalised
    street counts, so a bare zip code or a city mentioned in passing is no address.
    """
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
        tokens = usaddress.parse(sentence)
        parts: dict[str, list[str]] = {}
        started = False
        for token, label in tokens:
            if not started and label not in ("AddressNumber", "OccupancyType"):
                continue
            if label in ("NotAddress", "Recipient") or (started and label == "AddressNumber" and "ZipCode" in parts):
                break
            started = True
            parts.setdefault(label, []).append(token.strip(",.;"))
        if not started:
            continue
        found = {
            "address1": " ".join(w for label in _STREET for w in parts.get(label, [])),
            "address2": " ".join(w for label in _UNIT for w in parts.get(label, [])),
            "city": " ".join(word for word in parts.get("PlaceName", []) if word[:1].isupper()),
            "state": _state(" ".join(parts.get("StateName", []))) if parts.get("StateName") else "",
            "zip": "".join(parts.get("ZipCode", []))[:5],
        }
        street = parts.get("StreetName", [])
        if found["address1"] and street and all(word[:1].isupper() or word[:1].isdigit() for word in street):
            return {key: value for key, value in found.items() if value}
        if found["address2"]:  # a unit alone ('Suite 641') changes nothing else
            return {"address2": found["address2"]}
    return {}


def completed(new: dict[str, str], current: dict[str, Any]) -> dict[str, str]:
    """`new` address parts over the `current` address: a new street clears the old unit unless one is given."""
    keys = ("address1", "address2", "city", "country", "state", "zip")
    base = {key: str(current.get(key) or "") for key in keys}
    if "address1" in new and "address2" not in new:
        base["address2"] = ""
    base.update(new)
    base["country"] = base["country"] or "USA"
    return base


def _order_ids(text: str, found: TicketFeatures) -> tuple[str, ...]:
    """The order ids `text` (a part of the ticket) names, else those the whole ticket names."""
    return intents.features(text).order_ids or found.order_ids


def _handoff(found: TicketFeatures) -> Iterator[ToolCall]:
    first = re.split(r"(?<=[.!?])\s+", " ".join(found.text.split()), maxsplit=1)[0]
    summary = f"The customer asks to speak to a person. Their message: {first}"[:HANDOFF_SUMMARY_CHARS]
    yield ToolCall(tool="transfer_to_human_agents", arguments={"summary": summary})


def refund_kinds(text: str) -> set[str]:
    """The kinds of payment method the text asks refunds to go to ('refund to my amex card' -> credit_card)."""
    kinds = set()
    for match in REFUND_TO.finditer(text):
        kinds |= {kind for kind, pattern in METHOD_KINDS if pattern.search(match.group("what"))}
        if "original" in kinds:
            return {"original"}
    return kinds


def refund_possible(text: str, order: dict[str, Any], user: dict[str, Any]) -> bool:
    """False when every kind of method the text asks the refund to go to is one policy cannot refund to.

    A refund goes to the original payment method or one of the user's gift cards; 'refund to my credit card'
    on an order paid with PayPal asks for what cannot be done, and no other change is made in its place.
    """
    kinds = refund_kinds(text)
    methods = user.get("payment_methods") or {}
    original = methods.get(original_method(order) or "", {})
    allowed = {"original", str(original.get("source") or "")}
    allowed |= {
        str(m.get("source")) for m in methods.values() if isinstance(m, dict) and m.get("source") == "gift_card"
    }
    return not kinds or bool(kinds & allowed)


def plain_wholes(text: str) -> str:
    """`text` less the parts that mention the whole order under a condition or a negation ('if this would require
    cancelling the entire order, do not do it'): they ask for no whole order."""
    parts = SEGMENT.split(text)
    return " ".join(p for p in parts if not (WHOLE_ORDER.search(p) and NEGATED_OR_CONDITIONAL.search(p)))


def _cancels(found: TicketFeatures, world: World) -> Iterator[ToolCall]:
    pending, text = world.with_status("pending"), plain_wholes(intents.clause(found.text, "cancel"))
    whole = bool(WHOLE_ORDER.search(text))
    named = [order for order in pending if order["order_id"] in _order_ids(text, found)]
    if not whole and any(0 < len(named_lines(text, [order])) < len(order.get("items") or []) for order in named):
        named = []  # "cancel the air purifier in order #W1": some of its items, and cancelling takes them all
    lines = _one_order(named_lines(text, pending), found) if not named else []
    if not named and not lines and whole:  # "cancel the whole order": the order of the items named elsewhere
        lines = _one_order(named_lines(WHOLE_ORDER.sub(" ", found.text), pending), found)
    # cancelling cancels the whole order: by its items only when they are all of it, or the text says so
    by_items = [order for order, _ in lines[:1] if whole or len(lines) == len(order.get("items") or [])]
    targets = named or by_items or (pending if ALL_ORDERS.search(text) else [])
    reason = "ordered by mistake" if MISTAKE.search(found.text) else "no longer needed"
    for order in targets:
        yield ToolCall(tool="cancel_pending_order", arguments={"order_id": order["order_id"], "reason": reason})


def _returns(found: TicketFeatures, world: World) -> Iterator[ToolCall]:
    delivered = world.with_status("delivered")
    named = [order for order in delivered if order["order_id"] in found.order_ids]
    text = " ".join(intents.clause(found.text, intent) for intent in ("return", "refund"))
    lines = named_lines(text, named or delivered) or (named_lines(found.text, named) if named else [])
    if not lines and named and (ALL_ITEMS.search(found.text) or all(len(order["items"]) == 1 for order in named)):
        # the whole order only when the ticket says so or it holds one item: never items it did not name
        lines = [(order, item) for order in named for item in order.get("items") or []]
    for order_id in dict.fromkeys(str(order["order_id"]) for order, _ in lines):
        order = world.orders[order_id]
        if not refund_possible(found.text, order, world.user):
            continue
        original = original_method(order)
        chosen = None if ORIGINAL_PAYMENT.search(found.text) else payment_method(found.text, world.user)
        method = chosen if chosen and (chosen == original or chosen.startswith("gift_card")) else original
        item_ids = [str(item["item_id"]) for o, item in lines if o["order_id"] == order_id]
        if method:
            arguments = {"order_id": order_id, "item_ids": item_ids, "payment_method_id": method}
            yield ToolCall(tool="return_delivered_order_items", arguments=arguments)


def _item_changes(found: TicketFeatures, world: World, *, status: str, tool: str) -> Iterator[ToolCall]:
    text = " ".join(intents.clause(found.text, intent) for intent in ("exchange", "modify"))
    orders = world.with_status(status)
    named = [order for order in orders if order["order_id"] in found.order_ids]
    lines = named_lines(text, named or orders)
    products = [str(item.get("product_id")) for _, item in lines]
    for order in orders:
        changes = []
        for line_order, item in lines:
            product = world.products.get(str(item.get("product_id")))
            if line_order is not order or product is None or products.count(str(item.get("product_id"))) > 1:
                continue  # one product named in several orders: which one is meant is unclear
            new = wanted_variant(found.text, item, product)
            if new is not None:
                changes.append((str(item["item_id"]), new))
        method = payment_method(found.text, world.user) or original_method(order)
        if changes and method:
            arguments = {
                "order_id": order["order_id"],
                "item_ids": [old for old, _ in changes],
                "new_item_ids": [new for _, new in changes],
                "payment_method_id": method,
            }
            yield ToolCall(tool=tool, arguments=arguments)


def _same_place(place: str, address: dict[str, Any]) -> bool:
    words = " ".join(PLACE_ALIASES.get(word, word) for word in place.lower().split())
    city, state = str(address.get("city") or "").lower(), str(address.get("state") or "").lower()
    return bool(city) and (city in words or (len(words) > 2 and words in city) or words == state)


def known_address(text: str, world: World) -> tuple[str, dict[str, Any]] | None:
    """The address the text points to among those on file: 'my default address' (the account's), or one named by
    its place ('to my NYC address', 'the Washington DC address in one of my orders'); `(owner, address)`."""
    if TO_DEFAULT.search(text) and world.user.get("address"):
        return "user", world.user["address"]
    on_file = [("user", world.user.get("address") or {})]
    on_file += [(order_id, order.get("address") or {}) for order_id, order in world.orders.items()]
    for match in TO_PLACE.finditer(text):
        found = {completed({}, address)["address1"]: (owner, address) for owner, address in on_file
                 if _same_place(match.group("place"), address)}  # fmt: skip
        if len(found) == 1:
            return next(iter(found.values()))
    return None


def _orders_to_move(text: str, world: World, found: TicketFeatures, target: dict[str, Any]) -> list[dict[str, Any]]:
    """The pending orders an address change is for: named, 'all my orders', 'my LA order', 'the laptop order'."""
    pending = [o for o in world.orders.values() if str(o.get("status", "")).startswith("pending")]
    named = [order for order in pending if order["order_id"] in found.order_ids]
    if named or ALL_ORDERS.search(text):
        return named or pending
    for match in PLACE_ORDER.finditer(text):
        place = match.group("place")
        by_place = [o for o in pending if _same_place(place, o.get("address") or {})]
        by_item = [o for o in pending if any(names_item(place, str(i.get("name") or "")) for i in o.get("items") or [])]
        if len(by_place or by_item) == 1:
            return by_place or by_item
    elsewhere = [o for o in pending if completed({}, o.get("address") or {}) != completed({}, target)]
    return elsewhere if len(elsewhere) == 1 and ORDER_WORD.search(text) else []


def _address_changes(found: TicketFeatures, world: World) -> Iterator[ToolCall]:
    new = parse_address(found.text)
    pending = [o for o in world.orders.values() if str(o.get("status", "")).startswith("pending")]
    named = [order for order in pending if order["order_id"] in found.order_ids]
    account = bool(DEFAULT_ADDRESS.search(found.text)) and not TO_DEFAULT.search(found.text)
    if new and account and world.user_id:
        arguments = {"user_id": world.user_id, **completed(new, world.user.get("address") or {})}
        yield ToolCall(tool="modify_user_address", arguments=arguments)
    every = bool(ALL_ORDERS.search(found.text))
    only = len(pending) == 1 and (not account or bool(ORDER_WORD.search(found.text)))  # the account's only
    if new:
        for order in named or (pending if every or only else []):
            yield ToolCall(
                tool="modify_pending_order_address",
                arguments={"order_id": order["order_id"], **completed(new, order.get("address") or {})},
            )
        return
    known = known_address(found.text, world)
    if known is None:
        return
    owner, address = known
    for order in _orders_to_move(found.text, world, found, address):
        if order["order_id"] != owner:
            yield ToolCall(tool="modify_pending_order_address",
                           arguments={"order_id": order["order_id"], **completed({}, address)})  # fmt: skip
    if account and owner != "user" and world.user_id:
        yield ToolCall(tool="modify_user_address", arguments={"user_id": world.user_id, **completed({}, address)})


def _payment_changes(found: TicketFeatures, world: World) -> Iterator[ToolCall]:
    pending = [o for o in world.orders.values() if str(o.get("status", "")).startswith("pending")]
    named = [order for order in pending if order["order_id"] in found.order_ids]
    for order in named or (pending if len(pending) == 1 else []):
        method = payment_method(found.text, world.user, exclude=original_method(order))
        if method:
            yield ToolCall(tool="modify_pending_order_payment", arguments={"order_id": order["order_id"],
                                                                          "payment_method_id": method})  # fmt: skip


def planned_writes(found: TicketFeatures, history: History) -> Iterator[ToolCall]:
    """Every write the ticket's explicit requests call for, given the reads' results, in intent priority order.

    A delivered order takes one return or exchange: when the ticket asks for both on one order, the one it
    prefers ("I prefer the exchange") is proposed, else neither.
    """
    world = World.of(history)
    both = _returned_and_exchanged(found, world)
    preferred = PREFERS.search(found.text)
    wanted = ("exchange_delivered_order_items" if preferred.group("what").lower().startswith("exchang")
              else "return_delivered_order_items") if preferred else None  # fmt: skip
    for call in _planned(found, world):
        if call.tool in SWAPS and str(call.arguments.get("order_id")) in both and call.tool != wanted:
            continue
        yield call


def _returned_and_exchanged(found: TicketFeatures, world: World) -> set[str]:
    """The delivered orders the ticket asks both to return items of and to exchange items of."""
    if "exchange" not in found.intents or not {"return", "refund"} & set(found.intents):
        return set()
    delivered = world.with_status("delivered")
    returned = " ".join(intents.clause(found.text, intent) for intent in ("return", "refund"))
    exchanged = intents.clause(found.text, "exchange")
    return {str(o["order_id"]) for o, _ in named_lines(returned, delivered)} & {
        str(o["order_id"]) for o, _ in named_lines(exchanged, delivered)
    }


def _planned(found: TicketFeatures, world: World) -> Iterator[ToolCall]:
    for intent in intents.INTENT_PRIORITY:
        if intent not in found.intents:
            continue
        if intent == "human":
            yield from _handoff(found)
        elif world.user_id is None:
            continue
        elif intent == "cancel":
            yield from _cancels(found, world)
        elif intent in ("return", "refund"):
            yield from _returns(found, world)
        elif intent == "exchange":
            yield from _item_changes(found, world, status="delivered", tool="exchange_delivered_order_items")
            yield from _item_changes(found, world, status="pending", tool="modify_pending_order_items")
        elif intent == "modify":
            yield from _item_changes(found, world, status="pending", tool="modify_pending_order_items")
        elif intent == "address":
            yield from _address_changes(found, world)
        elif intent == "payment":
            yield from _payment_changes(found, world)


def next_write(found: TicketFeatures, *, history: History) -> ToolCall | None:
    """The next write the rules propose (None: nothing more); each tool acts once per order in one ticket.

    A change that hangs on a condition is proposed too: the loop holds it and asks the customer to confirm it.
    """
    made = {intents.call_key(call) for call, _ in history}
    acted = {(call.tool, str(call.arguments.get("order_id"))) for call, _ in history}
    for call in planned_writes(found, history):
        if intents.call_key(call) in made or (call.tool, str(call.arguments.get("order_id"))) in acted:
            continue
        return call
    return None


ITEM_CHANGES = frozenset({"exchange_delivered_order_items", "modify_pending_order_items"})
"""The writes that swap items for others, paid or refunded with a payment method the customer may name."""
_NEGATED = re.compile(r"\b(?:do not|don'?t|not|never|no longer)\s+(?:\w+\s+)?$", re.I)
STATES_METHOD = re.compile(
    r"^\W*(?:my|the) payment (?:method|option) (?:is|will be|would be)\b|^\W*I(?:'ll| will)? pay (?:with|by|using)\b",
    re.I,
)
"""'My payment method is gift card': which method pays the change asked for, not a change of an order's payment."""


def asked_intents(text: str) -> tuple[intents.Intent, ...]:
    """The intents `text` asks for, less those it negates ("do not exchange anything") and a payment method it only
    states ("my payment method is PayPal")."""
    corrected = intents.correct_spelling(text)
    found = intents.classify(intents.requests(text))
    if STATES_METHOD.search(text):
        found = tuple(intent for intent in found if intent != "payment")
    return tuple(i for i in found if not _NEGATED.search(corrected[: max(intents.clause_start(corrected, i), 0)]))


def _world_of(facts: Sequence[Any]) -> World:
    """The user, orders and products among a conversation's trusted results."""
    history = []
    for fact in facts:
        if not isinstance(fact, dict):
            continue
        if isinstance(fact.get("payment_methods"), dict):
            history.append((ToolCall(tool="get_user_details", arguments={}), fact))
        elif fact.get("order_id") and isinstance(fact.get("items"), list):
            history.append((ToolCall(tool="get_order_details", arguments={}), fact))
        elif fact.get("product_id") and isinstance(fact.get("variants"), dict):
            history.append((ToolCall(tool="get_product_details", arguments={}), fact))
    return World.of(history)


def _covered(intent: intents.Intent, tools: set[str]) -> bool:
    """Whether held writes `tools` carry out `intent` (an item swap, a refund, a payment change)."""
    if intent in ("exchange", "modify"):
        return bool(ITEM_CHANGES & tools)
    if intent == "payment":
        return bool(tools & (ITEM_CHANGES | {"modify_pending_order_payment", "return_delivered_order_items"}))
    return intent == "track" or bool(set(intents.INTENT_TOOLS[intent]) & tools)


def _item_names(world: World) -> dict[str, str]:
    return {str(item.get("item_id")): str(item.get("name") or "") for order in world.orders.values()
            for item in order.get("items") or []}  # fmt: skip


def _narrowed(call: ToolCall, text: str, names: dict[str, str]) -> ToolCall | None:
    """`call` keeping only the items `text` names (None: it names none of them)."""
    items = list(call.arguments.get("item_ids") or [])
    keep = [n for n, item_id in enumerate(items) if names_item(text, names.get(str(item_id), "-"))]
    if not keep:
        return None
    arguments = dict(call.arguments, item_ids=[items[n] for n in keep])
    if "new_item_ids" in call.arguments:
        arguments["new_item_ids"] = [call.arguments["new_item_ids"][n] for n in keep]
    return ToolCall(tool=call.tool, arguments=arguments)


def revise_held(held: Sequence[ToolCall], text: str, *, facts: Sequence[Any]) -> list[ToolCall] | None:
    """The held changes as `text` restates them, or None when it asks for a change they do not carry out.

    "Only the desk lamp" keeps the held lines of the items it names (or the orders it names), dropping the
    others; a payment method it names ("PayPal") pays the held item swaps; anything else leaves them as held.
    """
    tools = {call.tool for call in held}
    if any(not _covered(intent, tools) for intent in asked_intents(text)):
        return None
    named = set(intents.features(text).order_ids)
    if named and not named & {str(call.arguments.get("order_id")) for call in held}:
        return None  # a request about another order: planned anew
    world = _world_of(facts)
    revised = list(held)
    if conversations.restricts(text):
        names = _item_names(world)
        with_items = [call for call in held if call.arguments.get("item_ids")]
        narrowed = {id(call): _narrowed(call, text, names) for call in with_items}
        if any(narrowed.values()):
            kept = [narrowed.get(id(call), call) for call in held]
            revised = [call for call in kept if call is not None]
        named = set(intents.features(text).order_ids)
        if named & {str(call.arguments.get("order_id")) for call in revised}:
            revised = [call for call in revised if str(call.arguments.get("order_id", "")) in named | {""}]
    method = payment_method(text, world.user)
    if method:
        revised = [ToolCall(tool=c.tool, arguments=dict(c.arguments, payment_method_id=method))
                   if c.tool in ITEM_CHANGES else c for c in revised]  # fmt: skip
    return revised


def revision(text: str, earlier: str) -> TicketFeatures:
    """The features of a message that replaces the open request `earlier`: its own intents, both messages' details.

    The earlier request's asks for changes the message does not ask for are struck from its text ("return the
    chair" reads "the chair"), so a later turn that reads the open request again does not ask for them anew.
    """
    asked = asked_intents(text)
    dropped = [intent for intent in intents.classify(intents.requests(earlier)) if intent not in asked]
    joined = intents.features(f"{text}\n\n{intents.without_asks(earlier, dropped)}")
    return dataclasses.replace(joined, intents=asked, conditional=tuple(i for i in joined.conditional if i in asked))
