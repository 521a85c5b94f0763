"""The domain pack: everything business-specific the agent core receives as data (tools, intents, policy, renderers).

The core (loop, execution, grammar narrowing, prompts, answers) knows no domain; a pack such as
`streamdesk.domains.retail` hands it its tools, the intent rules the router runs, the policy text and the
sections each intent needs, the renderers of tool results and answer facts, approval defaults and RBAC
rules for its tools, and the names of its evaluation converters (the converters live in `evals/`, which
the product never imports).
`streamdesk.domains.get_pack()` loads the pack named by `STREAMDESK_AGENT__DOMAIN`.

A ticket's `Conversation` (earlier turns, the open request, held changes) reaches the pack's intent rules
(`IntentRules.recognise`). Room for what comes next: a tool's `effect` says whether a write changes the local
copy or emits a command to a system of record (`models.ToolEffect`); a generic read over any entity type
of the entity store would be a desk tool (`tools.DESK_TOOLS`), offered to every pack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from streamdesk import config as root_config
from streamdesk.agent.models import Message, Tool, ToolCall

History = Sequence[tuple[ToolCall, dict[str, Any] | None]]
"""The calls made for a ticket so far and their results (None: the call failed)."""
Lookup = tuple[ToolCall, dict[str, Any] | None, str | None]
"""One read made before the model's first step: the call, its result, its error."""


class Features(Protocol):
    """What a pack's intent rules found in a ticket; the core reads only these members."""

    @property
    def intents(self) -> tuple[str, ...]: ...

    @property
    def conditional(self) -> tuple[str, ...]: ...

    @property
    def text(self) -> str: ...

    @property
    def primary(self) -> str | None: ...

    @property
    def wants_write(self) -> bool: ...

    @property
    def needs_confirmation(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


class KnownValues(Protocol):
    """The ids a conversation's trusted tool results established: what narrows each id argument of a tool."""

    def spent(self, tool: str) -> bool:
        """True when `tool` has nothing left to do (its look-up is made already)."""
        ...

    def choices(self, tool: str, argument: str) -> list[str] | None:
        """The values `argument` of `tool` may take, or None when it is not an id argument."""
        ...

    def item_limit(self, tool: str) -> int:
        """How many entries a list argument of `tool` can hold."""
        ...

    def branches(self, tool: str, properties: dict[str, Any]) -> list[dict[str, Any]] | None:
        """One arguments schema per coherent choice of related ids (None: the flat narrowing applies)."""
        ...


@dataclass(frozen=True)
class Turn:
    """One message of a ticket's thread: who wrote it (customer, agent) and its text."""

    role: str
    text: str
    event_id: str = ""
    answer_id: str | None = None
    decision: str | None = None


@dataclass(frozen=True)
class Conversation:
    """What a ticket's thread holds beyond the message being answered (`agent.conversations` stores it).

    `turns` are the earlier messages in order; `open_request` the customer's words of a request still open
    (an answer to the agent's question completes it); `held_actions` the changes listed to the customer and
    awaiting their confirmation; `facts` the trusted results of the reads made so far; `customer_id` and
    `identified_by` the customer the agent established and how.
    """

    turns: tuple[Turn, ...] = ()
    held_actions: tuple[ToolCall, ...] = ()
    open_request: str | None = None
    facts: tuple[dict[str, Any], ...] = ()
    customer_id: str | None = None
    identified_by: str | None = None
    pending_action_ids: tuple[str, ...] = ()

    @property
    def customer_text(self) -> str:
        """Every earlier customer message, in order, as one text."""
        return "\n\n".join(turn.text for turn in self.turns if turn.role == "customer")


NO_CONVERSATION = Conversation()


class ReadProposer(Protocol):
    """The pack's next read for a ticket, given the calls so far (None: nothing more to read)."""

    def __call__(
        self, found: Any, *, history: History, knowledge: bool = True, customer_id: str | None = None
    ) -> ToolCall | None: ...


class WriteProposer(Protocol):
    """The pack's next write for a ticket once its reads are back (None: nothing more to carry out)."""

    def __call__(self, found: Any, *, history: History) -> ToolCall | None: ...


def _no_write(found: Any, *, history: History) -> ToolCall | None:
    return None


def _no_identity_reads(found: Any) -> Sequence[ToolCall]:
    return ()


def _nobody(history: History) -> str | None:
    return None


class HeldReviser(Protocol):
    """The held changes as a later message restates them, or None when it asks for a change they do not cover."""

    def __call__(self, held: Sequence[ToolCall], text: str, *, facts: Sequence[Any]) -> list[ToolCall] | None: ...


def _unrevised(held: Sequence[ToolCall], text: str, *, facts: Sequence[Any]) -> list[ToolCall] | None:
    return list(held)


@dataclass(frozen=True)
class IntentRules:
    """How the router reads a ticket and which tools each intent needs."""

    priority: tuple[str, ...]
    """Which intent names a ticket when several are found."""
    features: Callable[[str], Any]
    """The ticket's ids, contact details and intents (a `Features`)."""
    next_read: ReadProposer
    offered: Mapping[str, tuple[str, ...]]
    """Tools the model is offered for each intent, beyond `base_tools`."""
    base_tools: tuple[str, ...]
    """Look-ups every ticket with an intent is offered."""
    details: Mapping[str, frozenset[str]]
    """The result details (`Renderers.details`) each intent needs."""
    policy_sections: Mapping[str, tuple[str, ...]]
    """The policy sections (by heading) each intent needs."""
    change_words: Mapping[str, str]
    """How a confirmation request names each change (`a cancellation`)."""
    desk_writes: frozenset[str] = frozenset()
    """The pack's writes that change no customer data (a hand-off): offered even with no intent found."""
    handoff_tools: frozenset[str] = frozenset()
    """The pack's writes that hand the ticket to a person."""
    model_excluded: frozenset[str] = frozenset()
    """Tools never offered to the model."""
    next_write: WriteProposer = _no_write
    """The writes the ticket's explicit requests call for, proposed after the reads (the plan's second stage)."""
    identity_reads: Callable[[Any], Sequence[ToolCall]] = _no_identity_reads
    """The look-ups that may identify the customer from what the ticket's text gives (an email, a name and zip)."""
    identified: Callable[[History], str | None] = _nobody
    """The customer id the calls so far established, if any."""
    identity_request: str = "the email address of your account"
    """What the customer is asked for when nothing identifies them ("the email address of your account")."""
    revise_held: HeldReviser = _unrevised
    """`revise_held(held, text, facts=...)`: the held changes as a message restates them ("only the shirt", "pay
    with PayPal"; `facts` the conversation's trusted results), or None when it asks for a change they do not
    cover (the request is planned again)."""
    revision: Callable[[str, str], Any] | None = None
    """`revision(text, earlier)`: the features of a message that replaces the open request `earlier` (its
    intents, the earlier request's details); None reads the two messages joined."""

    def recognise(self, text: str, *, conversation: Conversation = NO_CONVERSATION) -> Features:
        """The features of a message's `text`, read with the open request it answers when it asks for nothing itself.

        "my email is ..." or "the order is #..." after a question of the agent's completes the earlier
        request: its intents come from the open request, the details from both.
        """
        found: Features = self.features(text)
        if found.intents or not conversation.open_request:
            return found
        joined: Features = self.features(f"{conversation.open_request}\n\n{text}")
        return joined

    def revise(self, text: str, *, conversation: Conversation = NO_CONVERSATION) -> Features:
        """The features of a message that changes the open request: the new request, read with the earlier one."""
        earlier = conversation.open_request or ""
        if self.revision is not None:
            revised: Features = self.revision(text, earlier)
            return revised
        joined: Features = self.features(f"{text}\n\n{earlier}")
        return joined

    def by_priority(self, intents: Sequence[str]) -> list[str]:
        """`intents` in priority order."""
        return sorted(intents, key=self.priority.index)


@dataclass(frozen=True)
class Renderers:
    """How the pack's tool results and answer facts read."""

    result_text: Callable[..., str]
    """`result_text(tool, result, *, error=None)`: one tool result as compact text for the model."""
    lookups: Callable[[Any, list[Lookup]], Message]
    """The router's reads for a ticket (features, look-ups) as one message."""
    facts: Callable[[History, Any], list[str]]
    """`facts(history, found)`: sentences the answer states from the tool results (never the model's words),
    about what the ticket (`found`: its features, None when unknown) asks."""
    details: frozenset[str] = frozenset()
    """Details of results a ticket may not need (hidden unless an intent needs them)."""
    request: Callable[[ToolCall, History], str] | None = None
    """`request(call, history)`: a proposed change in the customer's words (the pack's phrasing), from its
    arguments and the results read so far; None lists the tool and its arguments."""


@dataclass(frozen=True)
class ApprovalDefaults:
    """Default approval rules for the pack's tools (the policy settings may override them)."""

    approval_limits: Mapping[str, float] = field(default_factory=dict)
    hard_limits: Mapping[str, float] = field(default_factory=dict)
    always_approve: tuple[str, ...] = ()


AmountRule = Callable[..., float | None]
"""`amount(tool=, arguments=, trusted=)`: the money a write moves, from trusted results (None: unknown)."""


def _no_amount(**_: Any) -> float | None:
    return None


@dataclass(frozen=True)
class DomainPack:
    """One business domain as the agent core receives it."""

    name: str
    role: str
    """The system prompt's first line: who the agent is."""
    rules: str
    """The system prompt's core rules (markdown, with its heading)."""
    prompt_tag: str
    """Names the prompt template in `prompt_version`; bump when `role` or `rules` change."""
    tools: tuple[Tool, ...]
    intents: IntentRules
    renderers: Renderers
    known: Callable[..., KnownValues]
    """`known(results, *, found, searched)`: the ids the trusted results establish, for grammar narrowing."""
    policy_text: Callable[[], str]
    """The policy the agent follows (markdown; sections by heading)."""
    rbac_path: Path
    """YAML of the pack's tool groups and tools (kind, owned arguments, amount), merged into the rules file."""
    approvals: ApprovalDefaults = ApprovalDefaults()
    amount: AmountRule = _no_amount
    untrusted_results: frozenset[str] = frozenset()
    """The pack's tools whose results never vouch for a write's arguments (a calculator's sums are the model's)."""
    labelled_intents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Intent labels of public support data sets -> the pack's tools that carry them out."""
    eval_converters: tuple[str, ...] = ()
    """The `streamdesk eval convert <name>` converters (in `evals/`) that turn the domain's data into cases."""

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The names of the pack's tools, in order."""
        return tuple(tool.name for tool in self.tools)


def resolve(pack: DomainPack | None) -> DomainPack:
    """`pack`, or the configured one (`streamdesk.domains.get_pack`)."""
    return pack if pack is not None else resolve_default()


def resolve_default() -> DomainPack:
    """The configured pack (`STREAMDESK_AGENT__DOMAIN`), loaded like a plugin: the core imports no domain."""
    pack: DomainPack = root_config.domain_pack()
    return pack
