"""The retail intent rules: regex and keyword features of a ticket, and the first read calls they justify.

This is a deterministic pre-step, not a model. SmolLM2-135M rarely picks the right look-up from a
prompt, so the router proposes the authentication look-ups, the user's details, the orders the ticket
names (or the user's orders), the products of items to change, and a knowledge search. It never
proposes a write. Its calls go through the same policy, audit and guardrail path as the model's, and
the trace marks them `router`. The model takes over afterwards, offered the tools that fit the intents
found here (`agent.intents.model_tools`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz

from streamdesk.agent import intents, knowledge_tool
from streamdesk.agent.intents import edit_distance
from streamdesk.agent.models import ToolCall
from streamdesk.agent.packs import IntentRules
from streamdesk.guardrails import patterns as guardrail_patterns

Intent = Literal["human", "cancel", "exchange", "return", "refund", "address", "payment", "modify", "track"]
INTENT_PRIORITY: tuple[Intent, ...] = (
    "human",
    "cancel",
    "exchange",
    "return",
    "refund",
    "address",
    "payment",
    "modify",
    "track",
)
"""Which intent names a ticket when several are found (`TicketFeatures.primary`)."""

INTENT_TOOL: dict[Intent, str] = {
    "human": "transfer_to_human_agents",
    "cancel": "cancel_pending_order",
    "exchange": "exchange_delivered_order_items",
    "return": "return_delivered_order_items",
    "refund": "return_delivered_order_items",
    "address": "modify_pending_order_address",
    "payment": "modify_pending_order_payment",
    "modify": "modify_pending_order_items",
    "track": "get_order_details",
}
"""The tool that carries out each intent."""

INTENT_TOOLS: dict[str, tuple[str, ...]] = {
    "human": ("transfer_to_human_agents",),
    "cancel": ("cancel_pending_order",),
    "exchange": ("get_product_details", "exchange_delivered_order_items"),
    "return": ("return_delivered_order_items",),
    "refund": ("return_delivered_order_items",),
    "address": ("modify_pending_order_address", "modify_user_address"),
    "payment": ("modify_pending_order_payment",),
    "modify": ("get_product_details", "modify_pending_order_items"),
    "track": (),
}
"""Tools the model is offered for each intent, beyond the look-ups every ticket gets (`BASE_TOOLS`)."""

KNOWLEDGE_TOOL = knowledge_tool.SEARCH_TOOL
BASE_TOOLS = ("get_order_details", "get_user_details", KNOWLEDGE_TOOL)
MODEL_EXCLUDED = frozenset({"calculate"})
"""Never offered to the model: its expression pattern is unbounded and SmolLM2 loops in it until cut off."""
WRITE_INTENTS = frozenset(INTENT_PRIORITY) - {"track"}

_VERB_HUMAN = r"(talk|speak|contact|chat|reach|transfer|connect|call|get in touch|put me through|escalat)\w*"
_WHO_HUMAN = (
    r"(human|real person|person|someone|somebody|somneone|some1|operator|representative|rep|agent|staff"
    r"|employee|people|supervisor|manager|assistant|live support)"
)
_INTENT_PATTERNS: tuple[tuple[Intent, str], ...] = (
    (
        "human",
        rf"\b{_VERB_HUMAN}\b[^.?!]{{0,40}}?\b{_WHO_HUMAN}\b|\b(human|live) agent\b|\breal person\b"
        r"|\b(ask|demand|request)(s|ed|ing)? (for|to see) (a |an |the )?"
        r"(human|person|representative|supervisor|manager)",
    ),
    (
        "cancel",
        r"\b(cancel(?!lation (fee|charge|penalt))\w*|call off|revoke)\b"
        r"|\b(don'?t|do not|no longer)\s+(want|need|afford|pay for)\b[^.?!]{0,20}\b(order|purchase)\b",
    ),
    ("exchange", r"\b(exchang\w*|swap\w*|trade it|replace (it|them|the \w+) (with|for))\b"),
    ("return", r"\b(return(?!ing customer)\w*|send (it|them|\w+) back|give back)\b"),
    (
        "refund",
        r"\b(refund\w*|reimburs\w*|money back|compensat\w*|rebat\w*|restitution\w*|get (my )?money"
        r"|recover my money)\b",
    ),
    (
        "address",
        r"\b(address|deliver(ed|y)? to|ship(ped|ping)? to|moved (to|from)|relocat\w*)\b"
        r"|\b(ship|deliver|send)\w*\b[^.?!]{0,40}?\bto (\d+ \w+|suite|apt|apartment|unit)\b",
    ),
    ("payment", r"\b(payment method|pay(ing)? with|paid with|charge (it|my|to)|split the payment)\b"),
    (
        "modify",
        r"\b(modify|change(?! (?:my|his|her|their|our) mind)|edit|switch|update|alter|adjust|remove|delete|add)\b"
        r"[^.?!]{0,40}"
        r"\b(order|purchase|item|items|"
        r"product|products|size|colou?r|option|options)\b",
    ),
    (
        "track",
        r"\b(track\w*|where('s| is| are)|status|locat\w*|(not|never|yet to|when will \w+) arriv\w*|shipped|shipping"
        r"|delivery date|when will|eta)\b",
    ),
)
_INTENT_RULES = tuple((intent, re.compile(pattern, re.IGNORECASE)) for intent, pattern in _INTENT_PATTERNS)
_RULE_OF = dict(_INTENT_RULES)
VOCABULARY = (
    "cancel",
    "canceling",
    "cancelling",
    "cancellation",
    "address",
    "track",
    "person",
    "someone",
    "somebody",
    "refund",
    "reimburse",
    "exchange",
    "purchase",
    "operator",
    "assistant",
    "status",
    "shipping",
    "delivery",
    "speak",
    "return",
)
"""Trigger words a customer's typo (one edit, or a word glued to the one before) is corrected to."""
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_CONDITION = re.compile(
    r"\b(if|unless|otherwise|in case|whether|provided that|as long as|only when|depending on)\b", re.IGNORECASE
)
_COURTESY = re.compile(
    r"\bif (at all )?(possible|you can|you could|you would|you don'?t mind|you please|needed|necessary)\b",
    re.IGNORECASE,
)
"""'if possible', 'if you could': politeness, not a condition on the request."""
_TRACK_ONLY = re.compile(
    r"\b(status|track\w*)\b[^.?!]{0,25}\b(refund|return|reimburs|rebate|money)\w*"
    r"|\b(refund|return|reimbursement|rebate)s?\b[^.?!]{0,25}\b(status|processed|track\w*)\b",
    re.IGNORECASE,
)
"""A refund or return the customer only wants tracked ("status of my refund") is tracking, not a new one."""

_POLICY_QUESTION = re.compile(
    r"^[^?]*\b(how long|how much|how many|how soon|what happens|what is your|do you (offer|have|accept|ship)"
    r"|is there a|are there any)\b[^?]*\?\s*$",
    re.IGNORECASE,
)
"""A question about how things work ("If an order gets cancelled, how long does the refund take?"): the
knowledge answers it; it asks for no change, and its 'if' is no condition on a request."""

ORDER_ID = re.compile(r"(?<![\w#])#?(W\d{7})(?!\d)")
ORDER_NUMBER = re.compile(r"\b([A-Za-z]{4,9})\s*(?:number|no\.?|id|#|nr\.?)?\s*[:#]?\s*(\d{5,20})\b")
ORDER_WORDS = ("order", "orders", "purchase", "invoice")
USER_ID = re.compile(r"\b([a-z]+)_([a-z]+)_(\d{3,5})\b")
ZIP_LABELLED = re.compile(r"\b(?:zip\s*code|zipcode|zip|postal code|postcode)\b\D{0,20}?(\d{5})(?!\d)", re.IGNORECASE)
ZIP_BARE = re.compile(r"(?<![\d#W.,$-])(\d{5})(?![\d.,]\d)")
_NAME = r"([A-Z][a-z]+(?:-[A-Z][a-z]+)?)"
PERSON = re.compile(
    r"\b(?:I am|I'm|You are|you are|My name is|my name is|Your name is|your name is|You name is|name is|called|named"
    r"|This is|this is)\s+(?:(?:an?|the|user)\s+(?:[a-z]+\s+){0,3}?(?:called|named)?\s*)?"
    rf"{_NAME}\s+{_NAME}\b"
)
SEARCH_QUERY_CHARS = 300
MATCH_SCORE = 92
"""The least `rapidfuzz` score at which words of a ticket name an item or an option value."""
_WORD = re.compile(r"[a-z0-9]+")
MAX_ORDERS = 3
MAX_USER_ORDERS = 5
"""Orders of the user the router fetches when the ticket names none."""
MAX_PRODUCTS = 3
PRODUCT_INTENTS = frozenset({"modify", "exchange"})
"""Intents that pick a new variant: the router fetches the products of the items the ticket names."""


@dataclass(frozen=True)
class TicketFeatures:
    """What the router found in a ticket: ids, contact details, a name, zip codes and intents in text order."""

    order_ids: tuple[str, ...] = ()
    order_numbers: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    zip_codes: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    first_name: str | None = None
    last_name: str | None = None
    intents: tuple[Intent, ...] = ()
    conditional: tuple[Intent, ...] = ()
    query: str = field(default="", repr=False)
    text: str = field(default="", repr=False)

    @property
    def primary(self) -> Intent | None:
        """The intent that names the ticket (by `INTENT_PRIORITY`), or None."""
        return next((intent for intent in INTENT_PRIORITY if intent in self.intents), None)

    @property
    def wants_write(self) -> bool:
        """True when some intent asks for a change (anything but tracking)."""
        return any(intent in WRITE_INTENTS for intent in self.intents)

    @property
    def needs_confirmation(self) -> bool:
        """True when a requested change hangs on a condition: the customer confirms it before anything is written."""
        return any(intent in WRITE_INTENTS and intent != "human" for intent in self.conditional)

    def to_json(self) -> dict[str, Any]:
        """The features as a JSON object (for the trace; contact details are left out)."""
        return {
            "order_ids": list(self.order_ids),
            "order_numbers": list(self.order_numbers),
            "intents": list(self.intents),
            "primary": self.primary,
            "conditional": list(self.conditional),
            "has_email": bool(self.emails),
            "has_name_and_zip": bool(self.first_name and self.zip_codes),
        }


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def correct_spelling(text: str) -> str:
    """`text` with near-misses of the trigger words (`VOCABULARY`) corrected: 'cancdling' -> 'canceling'."""
    return intents.correct_spelling(text, vocabulary=VOCABULARY)


def classify(text: str) -> tuple[Intent, ...]:
    """The intents mentioned in `text` (typos of trigger words forgiven), in the order they first appear."""
    text = correct_spelling(text)
    found: list[tuple[int, Intent]] = []
    for intent, pattern in _INTENT_RULES:
        match = pattern.search(text)
        if match:
            found.append((match.start(), intent))
    intents = [intent for _, intent in sorted(found)]
    if _TRACK_ONLY.search(text) and not {"cancel", "exchange", "human"} & set(intents):
        intents = [intent for intent in intents if intent not in ("refund", "return")] or ["track"]
        intents = list(dict.fromkeys(intents))
    return tuple(intents)


def clause(text: str, intent: Intent) -> str:
    """The part of `text` asking for `intent`: from its trigger to the next other intent's trigger or the sentence end.

    "Return the water bottle, and exchange the pet bed" -> "Return the water bottle, and " for a return.
    Empty when the text does not ask for `intent`.
    """
    text = correct_spelling(text)
    pattern = _RULE_OF[intent]
    start = pattern.search(text)
    if start is None:
        return ""
    end = len(text)
    sentence_end = _SENTENCE_END.search(text, start.end())
    if sentence_end is not None:
        end = sentence_end.start()
    for other, rule in _INTENT_RULES:
        found = rule.search(text, start.end(), end) if other != intent else None
        if found is not None:
            end = min(end, found.start())
    return text[start.start() : end]


def without_asks(text: str, dropped: Sequence[Intent]) -> str:
    """`text` with the words that ask for the `dropped` intents struck out (typos corrected first)."""
    if not dropped:
        return text
    text = correct_spelling(text)
    for intent in dropped:
        text = _RULE_OF[intent].sub(" ", text)
    return text


def clause_start(text: str, intent: Intent) -> int:
    """Where in `text` the first trigger of `intent` starts (-1: none)."""
    match = _RULE_OF[intent].search(text)
    return match.start() if match else -1


def conditional_intents(text: str) -> tuple[Intent, ...]:
    """The intents `text` asks for only under a condition: named in a sentence with 'if', 'unless', 'otherwise'...

    "If it has not shipped, cancel it; otherwise return it" leaves the agent to guess which change the
    customer wants, and τ²'s retail policy wants explicit confirmation before any change anyway. Courtesy
    ("cancel it if possible") is no condition.
    """
    found: list[Intent] = []
    for sentence in _SENTENCE_END.split(text):  # `classify` forgives the typos
        if _CONDITION.search(_COURTESY.sub(" ", sentence)):
            found.extend(intent for intent in classify(sentence) if intent not in found)
    return tuple(found)


def _names(text: str, user_ids: Sequence[str]) -> tuple[str | None, str | None]:
    match = PERSON.search(text)
    if match:
        return match.group(1), match.group(2)
    for user_id in user_ids:
        first, last, _ = user_id.split("_")
        return first.title(), last.title()
    return None, None


def _is_order_word(word: str) -> bool:
    return any(edit_distance(word.lower(), known, limit=1) <= 1 for known in ORDER_WORDS)


def requests(text: str) -> str:
    """`text` without its questions about how things work (`_POLICY_QUESTION`): what the intents are read from."""
    return " ".join(s for s in _SENTENCE_END.split(text) if not _POLICY_QUESTION.match(s.strip()))


def features(text: str) -> TicketFeatures:
    """Order ids (`#W1234567`), other order numbers, emails, zip codes, a person's name and the intents.

    The intents are read from the requests: a question about how things work asks for no change.
    """
    user_ids = _unique([m.group(0) for m in USER_ID.finditer(text)])
    first, last = _names(text, user_ids)
    scrubbed = ORDER_ID.sub(" ", guardrail_patterns.EMAIL.sub(" ", text))
    zips = [m.group(1) for m in ZIP_LABELLED.finditer(scrubbed)] + [m.group(1) for m in ZIP_BARE.finditer(scrubbed)]
    return TicketFeatures(
        order_ids=_unique([f"#{m.group(1)}" for m in ORDER_ID.finditer(text)]),
        order_numbers=_unique([m.group(2) for m in ORDER_NUMBER.finditer(text) if _is_order_word(m.group(1))]),
        emails=_unique([m.group(0) for m in guardrail_patterns.EMAIL.finditer(text)]),
        zip_codes=_unique(zips),
        user_ids=user_ids,
        first_name=first,
        last_name=last,
        intents=classify(requests(text)),
        conditional=conditional_intents(requests(text)),
        query=" ".join(text.split())[:SEARCH_QUERY_CHARS],
        text=text,
    )


def call_key(call: ToolCall) -> tuple[str, tuple[tuple[str, str], ...]]:
    return call.tool, tuple(sorted((name, repr(value)) for name, value in call.arguments.items()))


def found_user(history: Sequence[tuple[ToolCall, dict[str, Any] | None]]) -> str | None:
    for call, result in history:
        if call.tool.startswith("find_user_id_by_") and result and isinstance(result.get("user_id"), str):
            return str(result["user_id"])
    return None


def _results(history: Sequence[tuple[ToolCall, dict[str, Any] | None]], tool: str) -> list[dict[str, Any]]:
    return [result for call, result in history if call.tool == tool and isinstance(result, dict)]


def _user_orders(history: Sequence[tuple[ToolCall, dict[str, Any] | None]]) -> list[str]:
    return [str(order) for user in _results(history, "get_user_details") for order in user.get("orders") or []]


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().replace("-", "")))


def mentions(text: str, phrase: str) -> bool:
    """True when `text` names `phrase` (case, hyphens, a plural and small misspellings forgiven, by `rapidfuzz`)."""
    words, wanted = _normal(text), _normal(phrase)
    wanted = wanted[:-1] if wanted.endswith("s") and len(wanted) > 4 else wanted
    if not wanted:
        return False
    if re.search(rf"\b{re.escape(wanted)}(e?s)?\b", words) or wanted.replace(" ", "") in words.split():
        return True
    return len(wanted) >= 6 and len(words) > len(wanted) and fuzz.partial_ratio(wanted, words) >= MATCH_SCORE


def names_item(text: str, name: str) -> bool:
    """True when `text` names an item called `name`: the whole name, or its head noun ('the camera')."""
    words = name.split()
    return bool(words) and (mentions(text, name) or mentions(text, words[-1]))


def _named(text: str, orders: Sequence[dict[str, Any]], key: str) -> list[str]:
    found: list[str] = []
    for order in orders:
        for item in order.get("items") or []:
            name, value = item.get("name"), item.get(key)
            if isinstance(name, str) and name.strip() and value and names_item(text, name):
                found.append(str(value))
    return list(dict.fromkeys(found))


def named_products(text: str, orders: Sequence[dict[str, Any]]) -> list[str]:
    """Product ids of the order items whose name the text mentions ("the water bottle" -> Water Bottle)."""
    return _named(text, orders, "product_id")


def named_items(text: str, orders: Sequence[dict[str, Any]]) -> list[str]:
    """Item ids of the order lines whose product name the text mentions."""
    return _named(text, orders, "item_id")


def identity_reads(found: TicketFeatures) -> list[ToolCall]:
    """The look-ups that may identify the customer: each email in the text, then the name with each zip code."""
    calls = [ToolCall(tool="find_user_id_by_email", arguments={"email": email}) for email in found.emails]
    if found.first_name and found.last_name:
        calls += [
            ToolCall(
                tool="find_user_id_by_name_zip",
                arguments={"first_name": found.first_name, "last_name": found.last_name, "zip": zip_code},
            )
            for zip_code in found.zip_codes
        ]
    return calls


def _candidates(
    found: TicketFeatures,
    *,
    user_id: str | None,
    knowledge: bool,
    history: Sequence[tuple[ToolCall, dict[str, Any] | None]],
    customer_id: str | None = None,
) -> Iterator[ToolCall]:
    if user_id is None:
        yield from identity_reads(found)
        user_id = customer_id  # the verified customer, when the ticket's own details found nobody
    if user_id is not None:
        yield ToolCall(tool="get_user_details", arguments={"user_id": user_id})
    orders = list(found.order_ids[:MAX_ORDERS])
    if not orders and found.intents != ("human",):
        orders = _user_orders(history)[:MAX_USER_ORDERS]
    for order_id in orders:
        yield ToolCall(tool="get_order_details", arguments={"order_id": order_id})
    if PRODUCT_INTENTS & set(found.intents):
        for product_id in named_products(found.text, _results(history, "get_order_details"))[:MAX_PRODUCTS]:
            yield ToolCall(tool="get_product_details", arguments={"product_id": product_id})
    if knowledge and found.query:
        yield ToolCall(tool=KNOWLEDGE_TOOL, arguments={"query": found.query})


def next_call(
    found: TicketFeatures,
    *,
    history: Sequence[tuple[ToolCall, dict[str, Any] | None]],
    knowledge: bool = True,
    customer_id: str | None = None,
) -> ToolCall | None:
    """The next read the router proposes, given the calls made so far and their results (None: failed).

    Authentication first (each email, then name and zip for each zip code, until one finds the user; else
    the verified `customer_id` of the ticket, if any), then the user's details, the orders the
    ticket names (else the user's orders, unless it only asks for a human), for a modification or exchange
    the products of the items it names, and a knowledge search on the ticket text.
    """
    made = {call_key(call) for call, _ in history}
    user_id = found_user(history)
    candidates = _candidates(found, user_id=user_id, knowledge=knowledge, history=history, customer_id=customer_id)
    return next((call for call in candidates if call_key(call) not in made), None)


INTENT_DETAILS: dict[str, frozenset[str]] = {
    "human": frozenset(),
    "cancel": frozenset(),
    "exchange": frozenset({"product_id", "options"}),
    "return": frozenset({"payments"}),
    "refund": frozenset({"payments", "price"}),
    "address": frozenset({"address"}),
    "payment": frozenset({"payments", "price"}),
    "modify": frozenset({"product_id", "options"}),
    "track": frozenset({"tracking"}),
}
"""The user and order details (`renderers.DETAILS`) each intent needs; ids, names and statuses are always shown."""


def hidden_details(found: TicketFeatures, *, details: frozenset[str]) -> frozenset[str]:
    """Which of `details` the ticket's intents do not need (none hidden when no intent was found)."""
    if not found.intents:
        return frozenset()
    needed = frozenset().union(*(INTENT_DETAILS[intent] for intent in found.intents))
    return details - needed


DESK_WRITES = frozenset({"transfer_to_human_agents"})
"""The hand-off changes no customer data: offered even when no intent asks for a change."""
POLICY_SECTIONS: dict[str, tuple[str, ...]] = {
    "cancel": ("Cancel pending order",),
    "modify": ("Modify pending order", "Modify items"),
    "address": ("Modify pending order",),
    "payment": ("Modify pending order", "Modify payment"),
    "return": ("Return delivered order",),
    "refund": ("Return delivered order",),
    "exchange": ("Exchange delivered order",),
    "human": (),
    "track": (),
}
"""The policy sections (by heading) each intent needs."""
CHANGE_WORDS: dict[str, str] = {
    "cancel": "a cancellation",
    "exchange": "an exchange",
    "return": "a return",
    "refund": "a refund",
    "address": "an address change",
    "payment": "a payment change",
    "modify": "a change of items",
}
"""How the confirmation request names each change the ticket asks for under a condition."""

RULES = IntentRules(
    priority=INTENT_PRIORITY, features=features, next_read=next_call,
    offered=INTENT_TOOLS, base_tools=BASE_TOOLS, details=INTENT_DETAILS,
    policy_sections=POLICY_SECTIONS, change_words=CHANGE_WORDS,
    desk_writes=DESK_WRITES, handoff_tools=frozenset({"transfer_to_human_agents"}), model_excluded=MODEL_EXCLUDED,
    identity_reads=identity_reads, identified=found_user,
    identity_request="the email address of your account, or your first and last name and the zip code of your address",
)  # fmt: skip
"""The retail intent rules the core's router runs (`pack.py` adds the writes of `plans.py`)."""
