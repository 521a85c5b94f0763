"""The answer loop: one ticket in, one answer out; every model and tool call authorized, guarded and audited.

A run, in order:
1. the ticket text is checked for prompt injection; a finding refuses every write for this ticket and
   escalates it at the end (the escalation is the guardrail's, not the model's); a change the ticket asks
   for only under a condition ("if it has not shipped, cancel it") is not written: the answer asks to confirm it;
2. the domain pack's intent rules propose the first reads (retail: authentication look-ups, the user's
   details, the orders the ticket names, else the user's orders, the products of items it names when it
   asks for a change) and a knowledge search (passages are checked for injection too, and flagged ones are never shown);
   the model sees them as one block of compact look-ups after the ticket and the policy sections it needs;
   then the rules propose the writes the ticket's explicit requests call for, from those results (`carry_out`):
   when one runs or waits for approval the model takes no step and the answer states the outcome;
3. the model takes up to `max_steps` grammar-constrained steps over the tools the policy permits,
   narrowed to the intents the router found (a tool it repeats is dropped); the last step may only
   reply; a cut-off (`finish_reason == "length"`) or unparsable step fails and is retried with a note;
   after `max_writes` model writes no more steps are taken (unless `reply_after_write`): the answer then
   states the outcome from the tool results, which a 135M model's own words often get wrong;
4. the answer: the reply, plus what waits for approval or for a human, with a status by `decide_status`.

Every answer runs within budgets (`budget.py`): the model reads at most `ticket_max_tokens` of the ticket,
cut further before any step whose prompt and generation would overflow the model's context (each cut is
recorded in the trace and audited, and makes the answer a draft); past `answer_timeout_s` the run stops,
mid-generation if need be, and the ticket is escalated with the reason audited.

Calls take one path (`execution.run_call`) whoever proposed them; the trace says who did.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from opentelemetry.context import Context

from streamdesk import telemetry
from streamdesk.agent import (
    budget,
    conversations,
    execution,
    grammar,
    grounding,
    intents,
    knowledge_tool,
    narrowing,
    packs,
    prompts,
    reply_gate,
)
from streamdesk.agent.answer_config import AnswerSettings, get_answer_settings
from streamdesk.agent.answers import Answer, AnswerStatus, Ticket, TraceStep
from streamdesk.agent.backends import LLMBackend
from streamdesk.agent.exceptions import AgentError, AnswerTimeoutError, InputBudgetError, StepParseError
from streamdesk.agent.models import REPLY_TOOL, Generation, Message, Reply, Tool, ToolCall
from streamdesk.agent.tools import ToolRegistry
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction
from streamdesk.guardrails import service as guardrails
from streamdesk.identity.models import Principal
from streamdesk.knowledge.embedders import get_embedder
from streamdesk.policy import rules as policy_rules
from streamdesk.policy import service as policy

FALLBACK_REPLY = "Thank you for your message. We are looking into it and will get back to you shortly."
COMPOSED_LEAD = "Thank you for your message. Here is where your request stands."
"""The opening of an answer composed from tool results (no model reply after a write)."""
KNOWLEDGE_LEAD = "Thank you for your message. Here is what our help articles say."
"""The opening of an answer that quotes the knowledge base and states no tool facts."""
HANDOFF_SENTENCE = "A member of our team will take over this ticket."
KNOWLEDGE_STEP = "(knowledge answer)"
"""The trace's name for the extractive answer's decision (answered or declined, with its features)."""
CUT_OFF_NOTE = "Your last output was cut off or was not one JSON object. Answer with one short JSON object."
REPLY_NOTE = (
    "Now write your reply to the customer in one or two short sentences: what you found or did, and what "
    "happens next. Do not repeat the ticket."
)
MAX_CITATIONS = 2
MIN_REPLY_CHARS = 20
HANDOFF_TOOLS = frozenset({"escalate"})
"""The core's hand-off; the domain pack adds its own (`IntentRules.handoff_tools`)."""
INPUT_BUDGET_STEP = "(input budget)"
"""The trace's name for a cut of the ticket text (a guardrail step, not a tool)."""
ANSWER_BUDGET_STEP = "(answer budget)"
"""The trace's name for an answer stopped by its wall-clock or context budget."""
NOT_CONFIDENT = frozenset(
    {"executed", "pending_approval", "held", "denied", "refused", "invalid", "truncated", "error"}
)
CONVERSATION_STEP = "(conversation)"
"""The trace's name for a turn's decision about held changes (confirmed, withdrawn, dropped)."""
COMMANDED_REPLY = "We will write again as soon as our systems confirm the change."
"""Said when a write went to a system of record as a command: it is done when its change comes back."""
WITHDRAWN_REPLY = "As you asked, nothing has been changed: we will not {what}."
MAX_FACTS = 24
"""The trusted read results a conversation keeps for its later turns."""


@dataclass
class AnswerResult:
    """The stored-to-be answer and how it came about: generations, the injection finding, wall time, its parts.

    `parts` are the reply's pieces marked by origin (model, fact, knowledge, template): what the grounding
    check read.
    """

    answer: Answer
    generations: list[Generation] = field(default_factory=list)
    parts: list[grounding.Part] = field(default_factory=list)
    injection: dict[str, Any] | None = None
    seconds: float = 0.0
    held: list[ToolCall] = field(default_factory=list)
    """Changes listed to the customer and awaiting their confirmation after this turn."""
    open_request: str | None = None
    """The customer's words of a request still open after this turn (a later answer completes it)."""
    facts: list[dict[str, Any]] = field(default_factory=list)
    """The trusted read results the conversation keeps for its later turns."""
    decision: str = "answered"
    """What this turn did with the thread: answered, held, confirmed, withdrawn, refused."""

    @property
    def model_steps(self) -> list[TraceStep]:
        """Steps the model chose (its replies included)."""
        return [step for step in self.answer.trace if step.source == "model"]

    @property
    def valid_calls(self) -> int:
        """Model steps that parsed into a schema-valid call and were not cut off."""
        return sum(step.outcome not in ("invalid", "truncated") for step in self.model_steps)

    @property
    def executed(self) -> list[TraceStep]:
        """Writes that ran."""
        return [step for step in self.answer.trace if step.outcome == "executed"]


def decide_status(
    *,
    trace: list[TraceStep],
    reply: Reply | None,
    injection: bool,
    wants_write: bool,
    settings: AnswerSettings,
    pack: packs.DomainPack | None = None,
    grounded: bool = True,
    citations: int | None = None,
    escalated: bool = False,
) -> AnswerStatus:
    """escalated > pending_approval > auto_reply > draft.

    Escalated: an injection finding, a hand-off that ran (or the run's own, `escalated`: a question the
    knowledge does not answer), or no valid reply. Auto reply only when allowed by the settings, every
    sentence of the reply is grounded (`grounding.sentence_grounding`), nothing was written, proposed,
    denied or failed, the ticket asks for no change, and the reply cites at least
    `auto_reply_min_citations` passages (`citations`; default: the model reply's).
    """
    handoff = HANDOFF_TOOLS | packs.resolve(pack).intents.handoff_tools
    handed_off = escalated or any(step.tool in handoff and step.outcome == "executed" for step in trace)
    if injection or handed_off or reply is None:
        return "escalated"
    if any(step.outcome == "pending_approval" for step in trace):
        return "pending_approval"
    cited = len(reply.citations) if citations is None else citations
    confident = (
        settings.auto_reply
        and grounded
        and not wants_write
        and not any(step.outcome in NOT_CONFIDENT for step in trace)
        and cited >= settings.auto_reply_min_citations
    )
    return "auto_reply" if confident else "draft"


def _waiting(trace: list[TraceStep]) -> bool:
    return any(step.outcome == "pending_approval" for step in trace)


def confirmation_request(intents: list[str], *, pack: packs.DomainPack | None = None) -> str:
    """The paragraph that asks the customer to confirm changes the ticket asked for only under conditions."""
    words = packs.resolve(pack).intents.change_words
    changes = [words[intent] for intent in intents if intent in words]
    what = changes[0] if len(changes) == 1 else ", ".join(changes[:-1]) + f" or {changes[-1]}"
    return (
        f"Nothing has been changed yet: your message asks about {what} only under a condition. If you want it "
        "made, reply with exactly the change you want and we will carry it out."
    )


def describe_call(call: ToolCall, *, pack: packs.DomainPack | None = None, history: packs.History = ()) -> str:
    """A change as the customer reads it in a confirmation request: the pack's words, or the tool and arguments."""
    words = packs.resolve(pack).renderers.request
    if words is not None:
        return words(call, history)
    shown = "; ".join(
        f"{name.replace('_', ' ')} {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for name, value in call.arguments.items()
    )
    return f"{call.tool.replace('_', ' ')} ({shown})" if shown else call.tool.replace("_", " ")


def held_request(held: list[ToolCall], *, pack: packs.DomainPack | None = None, history: packs.History = ()) -> str:
    """The paragraph that lists the changes held and asks the customer to confirm them."""
    listed = "; ".join(describe_call(call, pack=pack, history=history) for call in held)
    return (
        f'Nothing has been changed yet. We can {listed}. Reply "yes" to confirm, or "no" to leave everything as it is.'
    )


def compose_parts(
    *,
    reply: Reply | None,
    trace: list[TraceStep],
    escalated: bool,
    history: list[tuple[ToolCall, dict[str, Any] | None]] | None = None,
    injection: bool = False,
    confirm: list[str] | None = None,
    pack: packs.DomainPack | None = None,
    knowledge: grounding.KnowledgeAnswer | None = None,
    model_text: bool = True,
    found: Any = None,
    held: list[ToolCall] | None = None,
    withdrawn: list[ToolCall] | None = None,
) -> list[grounding.Part]:
    """The reply as parts marked by origin: model words, the pack's facts, quoted knowledge, fixed templates.

    The model's message is used only when `model_text` (the reply-quality gate) allows it; a ticket that
    tried a prompt injection gets none of the model's words back, only the fixed hand-off. `knowledge` is
    the extractive answer to the ticket's question: quoted when it answers, its decline (which says a
    person takes over) when it does not. `confirm` names the changes the ticket asked for only under
    conditions: the answer asks to confirm them; `held` lists the changes awaiting the customer's confirmation
    and `withdrawn` the ones they withdrew. `found` (the ticket's features) tells the pack's facts what the
    ticket asks about.
    """
    usable = model_text and reply is not None and reply.message.strip() and not injection
    pack = packs.resolve(pack)
    facts = [] if escalated else pack.renderers.facts(history or [], found)
    answered = knowledge is not None and knowledge.answerable and not injection
    declined = knowledge is not None and not knowledge.answerable and not injection and escalated
    parts: list[grounding.Part] = []
    if usable and reply is not None:
        parts.append(grounding.Part(reply.message.strip(), "model"))
    elif reply is not None and not injection and (facts or _waiting(trace) or held or withdrawn):
        parts.append(grounding.Part(COMPOSED_LEAD, "template"))
    elif reply is not None and answered:
        parts.append(grounding.Part(KNOWLEDGE_LEAD, "template"))
    elif not declined:
        parts.append(grounding.Part(FALLBACK_REPLY, "template"))
    if facts:
        parts.append(grounding.Part(" ".join(facts), "fact"))
    if knowledge is not None and (answered or declined):
        parts.extend(knowledge.parts)
    commands = {tool.name for tool in pack.tools if tool.effect == "command"}
    if any(step.outcome == "executed" and step.tool in commands for step in trace):
        parts.append(grounding.Part(COMMANDED_REPLY, "template"))
    waiting = sum(step.outcome == "pending_approval" for step in trace)
    if waiting:
        what = "this change before it takes" if waiting == 1 else "these changes before they take"
        parts.append(grounding.Part(f"A supervisor must approve {what} effect.", "template"))
    if withdrawn and not escalated:
        what = "; ".join(describe_call(call, pack=pack, history=history or ()) for call in withdrawn)
        parts.append(grounding.Part(WITHDRAWN_REPLY.format(what=what), "template"))
    if held and not escalated:
        parts.append(grounding.Part(held_request(held, pack=pack, history=history or ()), "template"))
    elif confirm and not escalated:
        parts.append(grounding.Part(confirmation_request(confirm, pack=pack), "template"))
    if escalated and not declined:
        parts.append(grounding.Part(HANDOFF_SENTENCE, "template"))
    return parts


def bounded(schema: dict[str, Any], *, tools: list[Tool], free_text_chars: int, reply_chars: int) -> dict[str, Any]:
    """`schema` with every free-text argument capped again (the step grammar drops lengths to compile fast).

    A string without an enum or pattern gets the smaller of its tool's own `maxLength` and
    `free_text_chars`; the reply message gets `reply_chars` and at most `MAX_CITATIONS` citations.
    Unbounded strings let a small model write until it is cut off, which fails the step.
    """
    originals = {tool.name: tool.parameters.get("properties", {}) for tool in tools}
    for branch in schema["anyOf"]:
        name = branch["properties"]["tool"]["const"]
        properties = branch["properties"]["arguments"].get("properties", {})
        if name == REPLY_TOOL:
            properties["message"]["maxLength"] = reply_chars
            citations = properties["citations"]
            citations["maxItems"] = min(citations.get("maxItems", MAX_CITATIONS), MAX_CITATIONS)
            continue
        for argument, prop in properties.items():
            if prop.get("type") == "string" and "pattern" not in prop and "enum" not in prop:
                own = originals.get(name, {}).get(argument, {}).get("maxLength", free_text_chars)
                prop["maxLength"] = min(own, free_text_chars)
    return schema


def fit_reply(schema: dict[str, Any], *, budget: int) -> None:
    """Shrink the reply branch of `schema` to fit `budget` characters: fewer citations, then a shorter message."""
    branch = next(b for b in schema["anyOf"] if b["properties"]["tool"] == {"const": REPLY_TOOL})
    properties = branch["properties"]["arguments"]["properties"]
    while narrowing.worst_case_chars(branch) > budget and properties["citations"].get("maxItems", 0) > 0:
        properties["citations"]["maxItems"] -= 1
    excess = narrowing.worst_case_chars(branch) - budget
    if excess > 0:
        shorter = int(properties["message"]["maxLength"] - excess)
        if shorter < MIN_REPLY_CHARS:
            raise AgentError(
                f"max_new_tokens leaves room for a {shorter}-character reply; raise STREAMDESK_ANSWER__MAX_NEW_TOKENS"
            )
        properties["message"]["maxLength"] = shorter


def _call_key(call: ToolCall) -> str:
    return audit.canonical_json({"tool": call.tool, "arguments": call.arguments})


def bound_registry(registry: ToolRegistry, *, principal: Principal, settings: AnswerSettings) -> ToolRegistry:
    """`registry` with the knowledge search bound to `principal` and the settings."""
    return knowledge_tool.bind(
        registry, principal=principal, k=settings.knowledge_k, mode=settings.search_mode, chars=settings.knowledge_chars
    )


def warm_up(
    backend: LLMBackend,
    *,
    registry: ToolRegistry,
    principal: Principal,
    settings: AnswerSettings | None = None,
    pack: packs.DomainPack | None = None,
) -> None:
    """Have `backend` read the system prompt `principal`'s tickets start with (once, before the first ticket)."""
    settings = settings or get_answer_settings()
    registry = bound_registry(registry, principal=principal, settings=settings)
    permitted = policy.permitted_tools(principal=principal, tools=registry.names())
    listed = [tool for tool in registry if tool.name in permitted]
    system = prompts.system_prompt(tools=listed, pack=pack)
    backend.warm([{"role": "system", "content": system}], adapter=settings.adapter)


class _Run:
    """The state of one answer: messages, the call scope, citations, the trace."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        ticket: Ticket,
        principal: Principal,
        backend: LLMBackend,
        registry: ToolRegistry,
        settings: AnswerSettings,
        approver: Principal | None,
        deadline: budget.Deadline,
        pack: packs.DomainPack,
        conversation: packs.Conversation = packs.NO_CONVERSATION,
    ) -> None:
        self.backend = backend
        self.conversation = conversation
        self.pack = pack
        self.settings = settings
        self.deadline = deadline
        self.original = ticket
        self.ticket, cut = budget.cut_ticket(
            ticket, backend=backend, tokens=settings.ticket_max_tokens, reason="longer than ticket_max_tokens"
        )
        registry = bound_registry(registry, principal=principal, settings=settings)
        self.scope = execution.CallScope(
            conn=conn, principal=principal, registry=registry, ticket=ticket, approver=approver, pack=pack
        )
        self.permitted = policy.permitted_tools(principal=principal, tools=registry.names())
        self.writes = {tool.name for tool in registry if tool.kind == "write"}
        listed = [tool for tool in registry if tool.name in self.permitted]
        self.prompt_version = prompts.prompt_version(tools=listed, pack=pack)
        self.found = pack.intents.recognise(self.ticket.text, conversation=conversation)
        self.scope.trusted.extend(conversation.facts)
        policy_message = prompts.policy_message(pack.intents.by_priority(self.found.intents), pack=pack)
        # the policy sections before the ticket: tickets of the same intents share that prefix (cached)
        self.messages: list[Message] = [
            {"role": "system", "content": prompts.system_prompt(tools=listed, pack=pack)},
            *([policy_message] if policy_message is not None else []),
            self._ticket_message(),
        ]
        self.ticket_index = len(self.messages) - 1
        self.history: list[tuple[ToolCall, dict[str, Any] | None]] = []
        self.trace: list[TraceStep] = []
        self.citations: list[str] = []
        self.passages: list[grounding.Passage] = []
        self.access_filter: dict[str, Any] | None = None
        self.injection: dict[str, Any] | None = None
        self.exhausted: set[str] = set()
        self.made: set[str] = set()
        self.generations: list[Generation] = []
        self.escalated = False
        self.held: list[ToolCall] = []
        self.knowledge: grounding.KnowledgeAnswer | None = None
        self.withdrawn: list[ToolCall] = []
        # a later message confirms what was listed to the customer; one that states no change of its own ("Yes, I
        # confirm.") authorises no change that was never listed
        states = not conversation.turns or bool(pack.intents.features(self.ticket.text).intents)
        self.confirmed = (
            conversations.confirms_explicitly(self.ticket.text) and not self.found.needs_confirmation and states
        )
        if cut is not None:
            self.record_cut(cut)

    def _ticket_message(self) -> Message:
        return prompts.ticket_message(
            subject=self.ticket.subject, body=self.ticket.body, source=f"ticket:{self.ticket.source}"
        )

    def record_cut(self, cut: budget.InputCut) -> None:
        """A cut of the ticket text: a guardrail step in the trace (the answer becomes a draft) and an audit record."""
        reason = cut.describe()
        self.trace.append(
            TraceStep(
                index=len(self.trace), source="guardrail", tool=INPUT_BUDGET_STEP, arguments=cut.to_json(),
                outcome="truncated", reason=reason,
            )
        )  # fmt: skip
        execution.record(
            self.scope, action=AuditAction.GUARDRAIL, decision="input_truncated", reason=reason, details=cut.to_json()
        )

    def fit_context(self) -> None:
        """Cut the ticket further while the prompt and the step's generation would overflow the model's context."""
        room = self.backend.context_tokens - self.settings.max_new_tokens
        while (excess := self.backend.count_tokens(self.messages) - room) > 0:
            held = self.backend.text_tokens(self.ticket.subject) + self.backend.text_tokens(self.ticket.body)
            if held == 0:
                raise InputBudgetError(
                    f"the prompt needs {excess} tokens more than the model's context of "
                    f"{self.backend.context_tokens} leaves beside max_new_tokens={self.settings.max_new_tokens}, "
                    "even without the ticket; lower STREAMDESK_ANSWER__MAX_NEW_TOKENS or KNOWLEDGE_K"
                )
            self.ticket, cut = budget.cut_ticket(
                self.ticket,
                backend=self.backend,
                tokens=max(held - excess, 0),
                reason=f"the prompt would overflow the model's context of {self.backend.context_tokens} tokens",
                original=self.original,
            )
            self.messages[self.ticket_index] = self._ticket_message()
            if cut is not None:
                self.record_cut(cut)

    def refuse_writes(self, *, finding: guardrails.InjectionFinding, where: str) -> None:
        """Record a prompt-injection finding: audited, and no write runs for this ticket any more."""
        self.injection = self.injection or {**finding.to_json(), "where": where}
        self.scope.writes_refused = True
        execution.record(
            self.scope,
            action=AuditAction.GUARDRAIL,
            decision="injection_detected",
            reason=f"possible prompt injection in {where} ({finding.rule}); writes refused, ticket escalated",
            details={"where": where, **finding.to_json()},
        )

    @property
    def confirm(self) -> list[str]:
        """The changes the ticket asks for only under a condition (none unless it needs confirmation).

        None once the customer confirmed or withdrew what was held: their answer settled the condition.
        """
        if not self.found.needs_confirmation or self.confirmed or self.withdrawn:
            return []
        return [intent for intent in self.found.conditional if intent in self.pack.intents.change_words]

    def hold_conditional_writes(self) -> None:
        """A change asked for only under a condition is not made: audited, and the answer asks to confirm it."""
        if not self.found.needs_confirmation:
            return
        execution.record(
            self.scope,
            action=AuditAction.GUARDRAIL,
            decision="confirmation_required",
            reason=f"the ticket asks for {', '.join(self.confirm)} only under a condition; no change is written",
            details={"conditional_intents": list(self.found.conditional)},
        )

    def call(
        self, call: ToolCall, *, source: Any, generation: Generation | None = None, show: bool = True
    ) -> execution.CallOutcome:
        """Run `call` on the one path, then (with `show`) show the model the call and what came back.

        A call the model repeats with the same arguments is not run again (a write would otherwise claim a
        second idempotency key and act twice): the step is recorded as a duplicate and the tool is spent.
        """
        key = _call_key(call)
        if source == "model" and key in self.made:
            return self._repeated(call, generation=generation)
        if self.must_confirm(call) and source != "guardrail":
            return self.hold(call, key=key, source=source, generation=generation, show=show)
        outcome = execution.run_call(self.scope, call=call, source=source, index=len(self.trace))
        step = outcome.step
        if generation is not None:
            step = step.model_copy(update=_usage(generation))
        self.trace.append(step)
        self.history.append((call, outcome.result))
        self.made.add(key)
        if show:
            self.messages.append(prompts.step_message(call))
            if call.tool == knowledge_tool.SEARCH_TOOL and outcome.result is not None:
                self.messages.append(self._passages(outcome.result))
            else:
                self.messages.append(
                    prompts.tool_result_message(call=call, result=outcome.result, error=outcome.error, pack=self.pack)
                )
        return outcome

    def must_confirm(self, call: ToolCall) -> bool:
        """True when `call` changes customer data the customer has not confirmed yet (a hand-off changes none)."""
        rules = self.pack.intents
        desk = HANDOFF_TOOLS | rules.handoff_tools | rules.desk_writes
        return call.tool in self.writes and call.tool not in desk and not self.confirmed

    def hold(
        self, call: ToolCall, *, key: str, source: Any, generation: Generation | None, show: bool
    ) -> execution.CallOutcome:
        """List `call` to the customer instead of running it: it runs when they confirm it (audited)."""
        reason = "a change of customer data is listed to the customer first; it runs when they confirm it"
        step = TraceStep(
            index=len(self.trace), source=source, tool=call.tool, arguments=call.arguments, outcome="held",
            decision="confirmation_required", reason=reason, **(_usage(generation) if generation is not None else {}),
        )  # fmt: skip
        self.trace.append(step)
        if call not in self.held:
            self.held.append(call)
        self.made.add(key)
        execution.record(
            self.scope, action=AuditAction.GUARDRAIL, decision="change_held", reason=reason, tool_name=call.tool,
            arguments=call.arguments, details={"source": source},
        )  # fmt: skip
        if show:
            self.messages.append(prompts.step_message(call))
            self.messages.append(
                prompts.tool_result_message(call=call, error="held: the customer must confirm it first", pack=self.pack)
            )
        return execution.CallOutcome(step, error=reason)

    def answer_held(self) -> str | None:
        """Act on the changes the conversation holds as this message says: run, revise, replace or drop them.

        A bare confirmation runs each held change on the one path (a high-risk one waits for approval); a
        message that restates the change ("yes, but only the shirt", "pay with PayPal") replaces it with the
        revised one, listed again (run when the message itself confirms explicitly); one that asks for a
        change the held ones do not cover ("return it instead") drops them and plans the new request, and one
        that adds a request ("I also want ...") keeps them beside the new one's; a withdrawal drops them; one
        that asks only for what they already do lists them again (`restated`), planning nothing beside them. A
        turn that carries a possible injection drops them unrun: a held change never runs on its say-so.
        """
        held = list(self.conversation.held_actions)
        if not held:
            return None
        if self.injection is not None:
            return self._turn("dropped", held, reason="the message carries a possible prompt injection")
        text = self.original.text
        said = conversations.reply_to_held(text)
        revised = self.pack.intents.revise_held(held, text, facts=self.conversation.facts)
        adds = conversations.adds(text) and said != "withdraw" and bool(self.pack.intents.features(text).intents)
        if revised is None or adds:
            self.found = self.pack.intents.revise(text, conversation=self.conversation)
            if adds:
                self.held = held
                return self._turn("extended", held, reason="a new request joins the held change")
            return self._turn("replaced", held, reason="a new request replaces the held change")
        if revised and revised != held:
            self.held = revised
            self._turn("revised", revised, reason="the customer restated the held change")
            if not conversations.confirms_explicitly(text):
                return "revised"
            self.confirmed = True
            self.held = []
            for call in revised:
                self.call(call, source="router")
            return "confirmed"
        if said == "withdraw":
            self.withdrawn = held
            return self._turn("withdrawn", held, reason="the customer withdrew the held change")
        if said == "confirm":
            self._turn("confirmed", held, reason="the customer confirmed the held change")
            self.confirmed = True
            for call in held:
                self.call(call, source="router")
            return "confirmed"
        self.held = held
        if self.pack.intents.features(text).wants_write:
            # the change it asks for is what the held ones do ("my payment method is ..."): listed again, not re-planned
            return self._turn("restated", held, reason="the message asks for what the held change already does")
        return None

    def _turn(self, decision: str, held: list[ToolCall], *, reason: str) -> str:
        listed = [{"tool": call.tool, "arguments": call.arguments} for call in held]
        self.trace.append(
            TraceStep(
                index=len(self.trace), source="guardrail", tool=CONVERSATION_STEP, arguments={"held": listed},
                outcome="ok", decision=decision, reason=reason,
            )
        )  # fmt: skip
        execution.record(
            self.scope, action=AuditAction.GUARDRAIL, decision=f"held_{decision}", reason=reason,
            details={"held": listed},
        )  # fmt: skip
        return decision

    def _repeated(self, call: ToolCall, *, generation: Generation | None) -> execution.CallOutcome:
        reason = f"{call.tool} was already called with these arguments for this ticket; its result is above"
        step = TraceStep(
            index=len(self.trace), source="model", tool=call.tool, arguments=call.arguments, outcome="duplicate",
            reason=reason, **(_usage(generation) if generation is not None else {}),
        )  # fmt: skip
        self.trace.append(step)
        self.exhausted.add(call.tool)
        self.messages.append(prompts.step_message(call))
        self.messages.append(prompts.tool_result_message(call=call, error=f"not run again: {reason}", pack=self.pack))
        return execution.CallOutcome(step, error=reason)

    def _passages(self, result: dict[str, Any]) -> Message:
        """The passages of a knowledge search that pass the injection check, as citable context."""
        if result.get("access_filter"):
            self.access_filter = result["access_filter"]
        shown: list[tuple[str, str]] = []
        for passage in result.get("passages") or []:
            text = f"{passage['title']}\n{passage['text']}"
            finding = guardrails.detect_injection(text, tool_names=self.pack.tool_names)
            if finding is not None:
                self.refuse_writes(finding=finding, where=f"knowledge passage {passage['chunk_id']}")
                continue
            shown.append((passage["chunk_id"], f"{passage['title']}\n{passage['text']}"))
            self.citations.append(passage["chunk_id"])
            self.passages.append(grounding.Passage.from_result(passage))
        if not shown:
            note = result.get("error") or "no passages found"
            return {"role": "user", "content": f"Knowledge search: {note}."}
        return prompts.passages_message(passages=shown)

    def route(self) -> None:
        """Run the router's reads until it has nothing more to propose (or its budget is spent).

        The model sees their results as one block of look-ups (and the passages as citable context), not
        as turns of its own: fewer prompt tokens, and nothing it has to repeat.
        """
        knowledge_on = knowledge_tool.SEARCH_TOOL in self.permitted and self.settings.knowledge_k > 0
        lookups: list[tuple[ToolCall, dict[str, Any] | None, str | None]] = []
        passages: Message | None = None
        for _ in range(self.settings.router_max_calls):
            self.deadline.check(before="the router's look-ups")
            proposal = self.pack.intents.next_read(
                self.found, history=self.history, knowledge=knowledge_on, customer_id=self.scope.principal.customer_id
            )
            if proposal is None:
                break
            outcome = self.call(proposal, source="router", show=False)
            if proposal.tool == knowledge_tool.SEARCH_TOOL and outcome.result is not None:
                passages = self._passages(outcome.result)
            else:
                lookups.append((proposal, outcome.result, outcome.error))
        if lookups:
            self.messages.append(self.pack.renderers.lookups(self.found, lookups))
        if passages is not None:
            self.messages.append(passages)

    def answer_question(self) -> grounding.KnowledgeAnswer | None:
        """The extractive answer to the ticket's question from the public passages shown (None: it asks none).

        The decision is recorded in the trace; a question the knowledge does not answer on a ticket with no
        intent of the pack's (nothing a tool result could answer) hands the ticket to a person.
        """
        question = grounding.question_of(self.ticket.text)
        searched = any(call.tool == knowledge_tool.SEARCH_TOOL for call, _ in self.history)
        if question is None or not searched:
            return None
        self.deadline.check(before="the knowledge answer")
        knowledge = grounding.answer_question(
            question, self.passages, embedder=get_embedder(), max_chars=grounding.REPLY_MAX_CHARS
        )
        self.trace.append(
            TraceStep(
                index=len(self.trace), source="guardrail", tool=KNOWLEDGE_STEP, arguments=knowledge.to_json(),
                outcome="ok", decision="answered" if knowledge.answerable else "declined",
            )
        )  # fmt: skip
        if not knowledge.answerable and not self.found.intents:
            self.escalate(
                reason="the knowledge base does not answer the customer's question; a human takes over",
                details=knowledge.to_json(),
            )
        return knowledge

    def carry_out(self) -> None:
        """Run the writes the pack's rules propose for the ticket's explicit requests, once their reads are back.

        Nothing is proposed for a ticket that carries a possible injection. A change of customer data the
        customer has not confirmed (or asked for only under a condition) is held and listed to them instead.
        The model sees each call and its result; it is offered no customer-data write afterwards. A hand-off
        to a person ends the turn's writes: the person takes the ticket over, nothing else runs or is held.
        """
        if self.scope.writes_refused:
            return
        considered = list(self.history)
        handoffs = HANDOFF_TOOLS | self.pack.intents.handoff_tools
        for _ in range(self.settings.router_max_calls):
            self.deadline.check(before="the rules' writes")
            proposal = self.pack.intents.next_write(self.found, history=considered)
            if proposal is None:
                break
            outcome = self.call(proposal, source="router")
            considered.append((proposal, outcome.result))
            if proposal.tool in handoffs:
                break

    @property
    def rules_wrote(self) -> bool:
        """True when a write the rules proposed ran, waits for approval or is held for the customer's confirmation."""
        return any(
            step.source == "router"
            and step.tool in self.writes
            and step.outcome in ("executed", "pending_approval", "held")
            for step in self.trace
        )

    def kept_facts(self) -> list[dict[str, Any]]:
        """The trusted read results of the conversation so far, this turn's last, for its later turns."""
        kept: dict[str, dict[str, Any]] = {}
        for fact in [*self.conversation.facts, *self.scope.trusted]:
            if isinstance(fact, dict):
                kept[audit.canonical_json(fact)] = fact
        return list(kept.values())[-MAX_FACTS:]

    def open_request(self, decision: str) -> str | None:
        """The request still open after this turn: held, or asked for but not yet carried out."""
        if self.injection is not None or decision in ("confirmed", "withdrawn"):
            return None
        if decision in ("revised", "restated"):
            return f"{self.conversation.open_request or ''}\n\n{self.original.text}".strip()
        if self.held or (self.found.wants_write and not self.rules_wrote):
            return self.found.text
        if not self.found.intents:
            return self.conversation.open_request
        return None

    def model_tools(self, *, final: bool) -> list[str]:
        """What the model may call in this step: nothing but a reply on the last one."""
        if final:
            return []
        offered = intents.model_tools(
            self.found,
            permitted=self.permitted,
            writes=self.writes,
            single_write=self.settings.max_writes == 1,
            pack=self.pack,
        )
        no_writes = self.scope.writes_refused or self.rules_wrote
        return [name for name in offered if name not in self.exhausted and not (no_writes and name in self.writes)]

    def think(self, *, max_steps: int) -> Reply | None:
        """Model steps until a reply (or the budget is spent); the reply, or None.

        After `max_writes` write steps the model writes no more: with `reply_after_write` it takes one last
        reply step, otherwise the answer is composed from the tool results alone (an empty reply).
        """
        for step in range(max_steps):
            if self.model_writes() >= self.settings.max_writes:
                if not self.settings.reply_after_write:
                    return Reply(message="")
                return self.model_step(final=True)
            reply = self.model_step(final=step == max_steps - 1)
            if reply is not None:
                return reply
        return None

    def model_writes(self) -> int:
        """Write steps the model has taken so far (whatever their outcome)."""
        return sum(step.source == "model" and step.tool in self.writes for step in self.trace)

    def grammar_for_step(self, *, final: bool) -> tuple[dict[str, Any], list[str]]:
        """The step's schema and tools: permitted, fit for the intents, narrowed to known ids, within the budget.

        A tool whose longest call could exceed `max_new_tokens` is not offered, and the reply is shrunk to
        fit, so no step can be cut off (each token is at least one character).
        """
        known = self.pack.known(
            self.scope.trusted,
            found=self.found,
            searched=any(call.tool == knowledge_tool.SEARCH_TOOL for call, _ in self.history),
        )
        tools, allowed = narrowing.narrowed_tools(
            list(self.scope.registry), allowed=self.model_tools(final=final), known=known
        )
        schema = self.step_schema(tools, allowed=allowed)
        budget = self.settings.max_new_tokens - 1
        too_long = {
            branch["properties"]["tool"]["const"]
            for branch in schema["anyOf"]
            if narrowing.worst_case_chars(branch) > budget
        } - {REPLY_TOOL}
        if too_long:
            allowed = [name for name in allowed if name not in too_long]
            schema = self.step_schema(tools, allowed=allowed)
        fit_reply(schema, budget=budget)
        return schema, allowed

    def model_step(self, *, final: bool) -> Reply | None:
        """One constrained generation; a tool call is run, a reply is returned, a failed step leaves a note."""
        self.deadline.check(before="a model step")
        schema, allowed = self.grammar_for_step(final=final)
        if not allowed:
            self.messages.append({"role": "user", "content": REPLY_NOTE})
        self.fit_context()
        generation = self._generate(schema, allowed=allowed)
        call: ToolCall | None = None
        try:
            if generation.finish_reason == "length":
                raise StepParseError(
                    f"the step was cut off after {generation.completion_tokens} tokens: {generation.text[:80]!r}"
                )
            call = ToolCall.from_text(generation.text)
            if call.is_reply:
                reply = call.reply()
                reply = reply.model_copy(update={"citations": [c for c in reply.citations if c in self.citations]})
                self.trace.append(_model_trace(len(self.trace), call=call, outcome="reply", generation=generation))
                return reply
        except StepParseError as exc:
            outcome = "truncated" if generation.finish_reason == "length" else "invalid"
            self.trace.append(
                _model_trace(len(self.trace), call=call, outcome=outcome, generation=generation, reason=str(exc))
            )
            self.messages.append({"role": "user", "content": CUT_OFF_NOTE})
            return None
        self.call(call, source="model", generation=generation)
        return None

    def step_schema(self, tools: list[Tool], *, allowed: list[str]) -> dict[str, Any]:
        """The grammar of one step: a branch per allowed tool and the reply, every string bounded."""
        return bounded(
            grammar.step_schema(tools=tools, allowed=allowed, citation_ids=self.citations),
            tools=tools,
            free_text_chars=self.settings.free_text_chars,
            reply_chars=self.settings.reply_max_chars,
        )

    def _generate(self, schema: dict[str, Any], *, allowed: list[str]) -> Generation:
        """One backend call inside a GenAI `chat` span, audited with model, adapter, prompt and passages."""
        model = self.backend.model_name
        attributes: dict[str, Any] = {
            telemetry.GEN_AI_OPERATION: "chat",
            telemetry.GEN_AI_PROVIDER: "streamdesk",
            telemetry.GEN_AI_REQUEST_MODEL: model,
            telemetry.GEN_AI_REQUEST_MAX_TOKENS: self.settings.max_new_tokens,
        }
        with telemetry.tracer(__name__).start_as_current_span(f"chat {model}", attributes=attributes) as span:
            generation = self.backend.generate(
                self.messages,
                json_schema=schema,
                max_new_tokens=self.settings.max_new_tokens,
                adapter=self.settings.adapter,
                deadline=self.deadline.at,
            )
            span.set_attributes(
                {
                    telemetry.GEN_AI_RESPONSE_MODEL: generation.model,
                    telemetry.GEN_AI_INPUT_TOKENS: generation.prompt_tokens,
                    telemetry.GEN_AI_OUTPUT_TOKENS: generation.completion_tokens,
                    telemetry.GEN_AI_FINISH_REASONS: [generation.finish_reason],
                }
            )
            self.generations.append(generation)
            execution.record(
                self.scope,
                action=AuditAction.MODEL_CALL,
                model=generation.model,
                model_version=generation.model,
                adapter_version=generation.adapter,
                prompt_version=self.prompt_version,
                chunk_ids=list(self.citations),
                access_filter=self.access_filter,
                decision=generation.finish_reason,
                details={
                    "allowed_tools": allowed,
                    "prompt_tokens": generation.prompt_tokens,
                    "cached_prompt_tokens": generation.cached_prompt_tokens,
                    "completion_tokens": generation.completion_tokens,
                    "seconds": round(generation.seconds, 3),
                    "output_sha256": audit.digest(generation.text),
                },
            )
        return generation

    def escalate(self, *, reason: str, details: dict[str, Any] | None = None) -> None:
        """The guardrail's own escalation of the ticket (audited; via the `escalate` tool when permitted)."""
        if "escalate" in self.permitted and not self.escalated:
            self.call(ToolCall(tool="escalate", arguments={"reason": reason, "priority": "high"}), source="guardrail")
        self.escalated = True
        execution.record(
            self.scope, action=AuditAction.ESCALATION, decision="escalated", reason=reason, details=details or {}
        )

    def over_budget(self, exc: AnswerTimeoutError | InputBudgetError) -> None:
        """Stop the answer: a guardrail step in the trace, and an escalation to a human with the reason audited."""
        spent = round(self.deadline.elapsed, 3)
        kind = "wall_clock" if isinstance(exc, AnswerTimeoutError) else "context"
        reason = f"answer stopped after {spent}s ({kind} budget): {exc}; a human takes over the ticket"
        self.trace.append(
            TraceStep(
                index=len(self.trace), source="guardrail", tool=ANSWER_BUDGET_STEP, outcome="error", reason=reason,
                arguments={"budget": kind, "limit_s": self.deadline.seconds, "elapsed_s": spent},
            )
        )  # fmt: skip
        self.escalate(reason=reason, details={"budget": kind, "limit_s": self.deadline.seconds, "elapsed_s": spent})


def _usage(generation: Generation) -> dict[str, Any]:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "seconds": round(generation.seconds, 3),
        "finish_reason": generation.finish_reason,
    }


def _model_trace(
    index: int, *, call: ToolCall | None, outcome: Any, generation: Generation, reason: str | None = None
) -> TraceStep:
    _, span_id = telemetry.span_ids()
    return TraceStep(
        index=index,
        source="model",
        tool=call.tool if call else "(unparsed)",
        arguments=call.arguments if call and not call.is_reply else {},
        outcome=outcome,
        reason=reason,
        span_id=span_id,
        **_usage(generation),
    )


def _customer_citations(
    reply: Reply | None,
    *,
    knowledge: grounding.KnowledgeAnswer | None,
    model_text: bool,
    passages: list[grounding.Passage],
) -> list[str]:
    """The chunk ids a customer's reply cites: the quoted passages, and the model's when its words are used.

    Only public passages are ever cited to a customer; an internal one the agent read stays in the trace.
    """
    public = {passage.chunk_id for passage in grounding.customer_visible(passages)}
    quoted = knowledge.citations if knowledge is not None and knowledge.answerable else []
    chosen = reply.citations if model_text and reply is not None and reply.message.strip() else []
    return [chunk for chunk in dict.fromkeys([*quoted, *chosen]) if chunk in public]


def answer_ticket(
    conn: psycopg.Connection,
    *,
    ticket: Ticket,
    principal: Principal,
    backend: LLMBackend,
    registry: ToolRegistry,
    max_steps: int | None = None,
    settings: AnswerSettings | None = None,
    approver: Principal | None = None,
    parent: Context | None = None,
    pack: packs.DomainPack | None = None,
    conversation: packs.Conversation = packs.NO_CONVERSATION,
) -> AnswerResult:
    """Answer one ticket as `principal`: route, think, act through policy and guardrails, and build the answer.

    `approver` (a supervisor) approves every write that needs approval at once (evaluation only).
    `parent` is the trace context the ticket arrived with; `pack` the domain (default: the configured one).
    Each call commits on its own when `conn` autocommits; inside a caller's transaction everything stays in
    it (savepoints). `conversation` is the ticket's thread before this message: its open request, the
    changes it holds, the facts found (`agent.conversations`).
    """
    settings = settings or get_answer_settings()
    pack = packs.resolve(pack)
    started = time.perf_counter()
    attributes = {
        telemetry.GEN_AI_OPERATION: "invoke_agent",
        "gen_ai.agent.name": "streamdesk-agent",
        "streamdesk.ticket": ticket.ref,
        "streamdesk.ticket.event_id": ticket.event_id,
    }
    with telemetry.tracer(__name__).start_as_current_span("answer_ticket", context=parent, attributes=attributes):
        run = _Run(
            conn,
            ticket=ticket,
            principal=principal,
            backend=backend,
            registry=registry,
            settings=settings,
            approver=approver,
            deadline=budget.Deadline(settings.answer_timeout_s),
            pack=pack,
            conversation=conversation,
        )
        for where, text in (("ticket", ticket.text), ("conversation", run.found.text)):
            finding = guardrails.detect_injection(text, tool_names=pack.tool_names)
            if finding is not None:
                run.refuse_writes(finding=finding, where=where)
                break
        decision = run.answer_held()
        if decision is None:
            run.hold_conditional_writes()
        model_text = reply_gate.allows_model_text(
            model=backend.model_name, adapter=settings.adapter, policy=settings.model_text
        )
        reply: Reply | None = None
        knowledge: grounding.KnowledgeAnswer | None = None
        try:
            if decision in ("confirmed", "withdrawn", "revised", "restated"):
                reply = Reply(message="")
            else:
                reply = _answer_message(run, model_text=model_text, max_steps=max_steps or settings.max_steps)
                knowledge = run.knowledge
        except (AnswerTimeoutError, InputBudgetError) as exc:
            run.over_budget(exc)
        if run.injection is not None:
            run.escalate(reason=f"possible prompt injection ({run.injection['rule']})")
        customer_citations = _customer_citations(
            reply, knowledge=knowledge, model_text=model_text, passages=run.passages
        )
        compose = functools.partial(
            compose_parts,
            reply=reply,
            trace=run.trace,
            history=run.history,
            injection=run.injection is not None,
            confirm=run.confirm,
            pack=pack,
            knowledge=knowledge,
            model_text=model_text,
            found=run.found,
            held=run.held,
            withdrawn=run.withdrawn,
        )
        draft = compose(escalated=False)
        status = decide_status(
            trace=run.trace,
            reply=reply,
            injection=run.injection is not None,
            wants_write=run.found.wants_write,
            settings=settings,
            pack=pack,
            grounded=all(ok for _, ok in grounding.sentence_grounding(draft, passages=run.passages)),
            citations=len(customer_citations),
            escalated=run.escalated,
        )
        trace_id, _ = telemetry.span_ids()
        answer = Answer(
            event_id=ticket.event_id,
            source=ticket.source,
            ticket_id=ticket.ticket_id,
            tenant=ticket.tenant,
            customer_id=principal.customer_id,
            status=status,
            text=grounding.paragraphs(parts := compose(escalated=status == "escalated")),
            citations=customer_citations,
            trace=run.trace,
            model=backend.model_name,
            adapter=settings.adapter,
            prompt_version=run.prompt_version,
            policy_version=policy_rules.load_rules().policy_version,
            pending_action_ids=[s.action_id for s in run.trace if s.outcome == "pending_approval" and s.action_id],
            trace_id=trace_id,
        )
    decision = decision or ("refused" if run.injection else "held" if run.held else "answered")
    return AnswerResult(
        answer=answer,
        generations=run.generations,
        injection=run.injection,
        seconds=time.perf_counter() - started,
        parts=parts,
        held=run.held,
        open_request=run.open_request(decision),
        facts=run.kept_facts(),
        decision=decision,
    )


def _answer_message(run: _Run, *, model_text: bool, max_steps: int) -> Reply | None:
    """Route, carry out, answer the question, and let the model think when nothing else answered."""
    run.route()
    run.carry_out()
    run.knowledge = run.answer_question()
    if run.rules_wrote or not (model_text or run.found.intents):
        # what the rules carried out is stated from the tool results, and a pure question the model's
        # words cannot answer is answered from the knowledge: no model step to wait for
        return Reply(message="")
    return run.think(max_steps=max_steps)
