"""The intent router's engine: which tools the model is offered once a domain pack's rules have read a ticket.

The pack's `IntentRules` find the intents and propose the first reads (a deterministic pre-step, not a
model); this module turns what they found into the model's tool menu (`model_tools`) and holds the spelling
forgiveness the rules share.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from streamdesk.agent import packs
from streamdesk.agent.knowledge_tool import SEARCH_TOOL
from streamdesk.agent.packs import Features
from streamdesk.agent.tools import TICKET_WRITES

_TOKEN = re.compile(r"[A-Za-z]+")


def edit_distance(a: str, b: str, *, limit: int = 2) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours), capped at `limit` + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous, current = list(range(len(b) + 1)), [0] * (len(b) + 1)
    before: list[int] = []
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return min(previous[len(b)], limit + 1)


def _corrected(word: str, vocabulary: Sequence[str]) -> str:
    lower = word.lower()
    if len(lower) < 5 or lower in vocabulary:
        return word
    for known in vocabulary:
        if len(lower) > len(known) + 1 and lower.endswith(known) and len(known) >= 6:
            return f"{lower[: -len(known)]} {known}"
        if edit_distance(lower, known, limit=1) <= 1:
            return known
    return word


def correct_spelling(text: str, *, vocabulary: Sequence[str]) -> str:
    """`text` with near-misses of the `vocabulary` (one edit, or glued to the word before) corrected."""
    return _TOKEN.sub(lambda match: _corrected(match.group(0), vocabulary), text)


def model_tools(
    found: Features,
    *,
    permitted: Sequence[str],
    writes: Collection[str] = frozenset(),
    single_write: bool = False,
    pack: packs.DomainPack | None = None,
) -> list[str]:
    """The permitted tools the model is offered after routing: the look-ups plus the tools of the intents found.

    A change request is not offered the knowledge search (its policy sections ground it). With no intent
    found the model is offered every permitted tool but the pack's `model_excluded` and the `writes` that
    change customer data: a write needs a request the router recognised. With `single_write` (one write per
    ticket) only the primary intent's writes are offered: the request the ticket is named by. A ticket whose
    change hangs on a condition (`needs_confirmation`) is offered no customer-data write: the answer asks
    the customer to confirm the change first.
    """
    rules = packs.resolve(pack).intents
    desk = rules.desk_writes | TICKET_WRITES
    if not found.intents:
        return [name for name in permitted if name not in rules.model_excluded and (name not in writes or name in desk)]
    wanted = set(rules.base_tools) - ({SEARCH_TOOL} if found.wants_write else set())
    for intent in found.intents:
        own = not single_write or intent == found.primary
        wanted.update(name for name in rules.offered[intent] if own or name not in writes)
    if found.needs_confirmation:
        wanted = {name for name in wanted if name not in writes or name in desk}
    return [name for name in permitted if name in wanted and name not in rules.model_excluded]
