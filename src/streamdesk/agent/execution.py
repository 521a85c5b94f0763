"""The one path every tool call takes, whoever proposed it (router, model, guardrail).

schema check -> `policy.enforce` (an audited RBAC decision, provenance of an agent's write arguments)
-> for writes: provenance for every principal, then approval (`approvals.propose`) or an idempotent claim
(`approvals.claim_for_execution`) -> execution -> an audit record with the sha256 of the result. Each
call is an OpenTelemetry span with GenAI attributes. A write claims its idempotency key in the same
transaction that runs it and records it, so a redelivered ticket event never runs a write twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from streamdesk import telemetry
from streamdesk.agent import packs
from streamdesk.agent.answers import StepOutcome, StepSource, Ticket, TraceStep
from streamdesk.agent.exceptions import ToolError
from streamdesk.agent.models import Tool, ToolCall, ToolContext
from streamdesk.agent.tools import ToolRegistry
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.commands import service as commands
from streamdesk.commands.models import Command
from streamdesk.guardrails import service as guardrails
from streamdesk.identity.models import Principal
from streamdesk.policy import approvals
from streamdesk.policy import service as policy
from streamdesk.policy.exceptions import ApprovalError
from streamdesk.policy.models import Decision, PendingAction

UNTRUSTED_RESULTS = frozenset({"search_knowledge"})
"""Tools whose results never vouch for a write's arguments: passages are documents (the pack adds its own)."""


@dataclass
class CallScope:
    """Who calls, for which ticket, and what the conversation has established so far."""

    conn: psycopg.Connection
    principal: Principal
    registry: ToolRegistry
    ticket: Ticket
    approver: Principal | None = None
    trusted: list[Any] = field(default_factory=list)
    ordinals: Counter[str] = field(default_factory=Counter)
    writes_refused: bool = False
    pack: packs.DomainPack = field(default_factory=packs.resolve_default)

    @property
    def context(self) -> ToolContext:
        """The tool context of the principal on this ticket."""
        return ToolContext.for_principal(
            self.principal, ticket_source=self.ticket.source, ticket_id=self.ticket.ticket_id
        )


@dataclass
class CallOutcome:
    """What one call did: its trace step, the result or error shown to the model, and any pending action."""

    step: TraceStep
    result: dict[str, Any] | None = None
    error: str | None = None
    action: PendingAction | None = None

    @property
    def executed_write(self) -> bool:
        """True when a write ran in this call."""
        return self.step.outcome == "executed"


def record(scope: CallScope, *, action: AuditAction, principal: Principal | None = None, **fields: Any) -> None:
    """Append one event about this ticket to the audit trail, with the current span's trace ids."""
    trace_id, span_id = telemetry.span_ids()
    event = AuditEvent.for_principal(
        principal or scope.principal,
        action=action,
        ticket_id=scope.ticket.ref,
        trace_id=trace_id,
        span_id=span_id,
        **fields,
    )
    audit.append(scope.conn, event=event)


def run_call(scope: CallScope, *, call: ToolCall, source: StepSource, index: int) -> CallOutcome:
    """Authorize, guard, execute (or propose) and audit one tool call, inside an `execute_tool` span."""
    attributes = {
        telemetry.GEN_AI_OPERATION: "execute_tool",
        telemetry.GEN_AI_TOOL_NAME: call.tool,
        telemetry.GEN_AI_TOOL_CALL_ID: f"{scope.ticket.event_id}:{index}",
        telemetry.GEN_AI_TOOL_TYPE: "function",
        "streamdesk.step.source": source,
    }
    with telemetry.tracer(__name__).start_as_current_span(f"execute_tool {call.tool}", attributes=attributes) as span:
        outcome = _run(scope, call=call, source=source, index=index)
        span.set_attribute("streamdesk.step.outcome", outcome.step.outcome)
        return outcome


def _step(call: ToolCall, *, source: StepSource, index: int, outcome: StepOutcome, **fields: Any) -> TraceStep:
    _, span_id = telemetry.span_ids()
    return TraceStep(
        index=index, source=source, tool=call.tool, arguments=call.arguments, outcome=outcome, span_id=span_id, **fields
    )


def _failed(
    call: ToolCall,
    *,
    source: StepSource,
    index: int,
    outcome: StepOutcome,
    reason: str,
    error: str | None = None,
    **fields: Any,
) -> CallOutcome:
    """A call that ran nothing: its step (with `reason`), and `error` (default: the reason) for the model."""
    step = _step(call, source=source, index=index, outcome=outcome, reason=reason, **fields)
    return CallOutcome(step, error=reason if error is None else error)


def _record_call(
    scope: CallScope, call: ToolCall, *, action: AuditAction, source: StepSource, details: dict[str, Any], **fields: Any
) -> None:
    """Audit one event about `call` (its tool and arguments), the details naming who proposed it."""
    details = {"source": source, **details}
    record(scope, action=action, tool_name=call.tool, arguments=call.arguments, details=details, **fields)


def _guardrail_denial(scope: CallScope, *, call: ToolCall, source: StepSource, reason: str, rule: str) -> None:
    """Audit a guardrail's refusal of `call` under `rule`."""
    details = {"rule": rule}
    _record_call(scope, call, action=AuditAction.GUARDRAIL, source=source, details=details, decision="denied",
                 reason=reason)  # fmt: skip


def _run(scope: CallScope, *, call: ToolCall, source: StepSource, index: int) -> CallOutcome:
    try:
        tool = scope.registry.validate(name=call.tool, arguments=call.arguments)
    except ToolError as exc:
        return _failed(call, source=source, index=index, outcome="invalid", reason=str(exc))
    if tool.kind == "write" and scope.writes_refused and source != "guardrail":
        reason = f"{tool.name} refused: this ticket carries a possible prompt injection, so no write may run"
        _guardrail_denial(scope, call=call, source=source, reason=reason, rule="injection:writes_refused")
        return _failed(call, source=source, index=index, outcome="refused", reason=reason)
    trace_id, span_id = telemetry.span_ids()
    amount = scope.pack.amount(tool=tool.name, arguments=call.arguments, trusted=scope.trusted)
    decision = policy.enforce(
        scope.conn,
        ticket_id=scope.ticket.ref,
        principal=scope.principal,
        tool_name=tool.name,
        tool_kind=tool.kind,
        arguments=call.arguments,
        trusted_values=scope.trusted if tool.kind == "write" else None,
        amount=amount,
        trace_id=trace_id,
        span_id=span_id,
    )
    if not decision.allowed:
        return _denied(call, source=source, index=index, decision=decision)
    if tool.kind == "read":
        return _read(scope, tool=tool, call=call, source=source, index=index, decision=decision)
    return _write(scope, tool=tool, call=call, source=source, index=index, decision=decision)


def _denied(call: ToolCall, *, source: StepSource, index: int, decision: Decision) -> CallOutcome:
    return _failed(
        call,
        source=source,
        index=index,
        outcome="denied",
        decision=decision.outcome,
        reason=decision.reason,
        error=f"denied by policy: {decision.reason}",
    )


def _read(
    scope: CallScope, *, tool: Tool, call: ToolCall, source: StepSource, index: int, decision: Decision
) -> CallOutcome:
    try:
        result = scope.registry.call(scope.conn, name=tool.name, arguments=call.arguments, context=scope.context)
    except ToolError as exc:
        details = {"error": type(exc).__name__}
        _record_call(scope, call, action=AuditAction.TOOL_CALL, source=source, details=details, decision="error",
                     reason=str(exc))  # fmt: skip
        return _failed(call, source=source, index=index, outcome="error", decision=decision.outcome, reason=str(exc))
    result_hash = audit.digest(result)
    searched = tool.name == "search_knowledge"
    _record_call(
        scope,
        call,
        action=AuditAction.TOOL_CALL,
        source=source,
        details={},
        result_hash=result_hash,
        decision=decision.outcome,
        chunk_ids=[p["chunk_id"] for p in (result.get("passages") if searched else None) or []],
        access_filter=result.get("access_filter") if searched else None,
    )
    if tool.name not in UNTRUSTED_RESULTS | scope.pack.untrusted_results:
        scope.trusted.append(result)
    step = _step(call, source=source, index=index, outcome="ok", decision=decision.outcome, result_hash=result_hash)
    return CallOutcome(step, result=result)


def _provenance(scope: CallScope, *, tool: Tool, call: ToolCall, source: StepSource) -> str | None:
    """Why a person's write arguments are not trusted (the policy already checked the agent identity's)."""
    if scope.principal.is_agent:
        return None
    trusted = [*scope.trusted, scope.principal.customer_id]
    ok, offending = guardrails.arguments_are_trusted(arguments=call.arguments, trusted_values=trusted)
    if ok:
        return None
    reason = f"{tool.name} arguments {', '.join(offending)} came from no earlier tool result; look them up first"
    _guardrail_denial(scope, call=call, source=source, reason=reason, rule="provenance:untrusted")
    return reason


def _write(
    scope: CallScope, *, tool: Tool, call: ToolCall, source: StepSource, index: int, decision: Decision
) -> CallOutcome:
    untrusted = _provenance(scope, tool=tool, call=call, source=source)
    if untrusted is not None:
        return _failed(call, source=source, index=index, outcome="denied", decision="denied", reason=untrusted)
    key = approvals.idempotency_key_for(
        ticket_id=scope.ticket.ref,
        event_id=scope.ticket.event_id,
        tool_name=tool.name,
        ordinal=scope.ordinals[tool.name],
    )
    scope.ordinals[tool.name] += 1
    if not decision.requires_approval:
        return _execute(scope, tool=tool, call=call, source=source, index=index, key=key, decision=decision)
    try:
        action = approvals.propose(
            scope.conn,
            ticket_id=scope.ticket.ref,
            tool_name=tool.name,
            arguments=call.arguments,
            principal=scope.principal,
            idempotency_key=key,
            reason=decision.reason,
        )
        if scope.approver is not None and action.status == "pending":
            action = approvals.approve(scope.conn, action_id=action.id, approver=scope.approver, note="auto-approved")
    except ApprovalError as exc:
        return _failed(
            call,
            source=source,
            index=index,
            outcome="duplicate",
            decision=decision.outcome,
            reason=str(exc),
            error=f"not run again: {exc}",
        )
    if action.status == "approved":
        acting = approvals.acting_principal(action)
        outcome = _execute(
            scope,
            tool=tool,
            call=call,
            source=source,
            index=index,
            key=key,
            decision=decision,
            acting=acting,
            action_id=action.id,
        )
        return CallOutcome(outcome.step.model_copy(update={"action_id": action.id}), outcome.result, outcome.error)
    if action.status in ("executed", "rejected"):
        return _failed(
            call,
            source=source,
            index=index,
            outcome="duplicate",
            decision=decision.outcome,
            reason=f"action {action.id} was already {action.status}; it is not run again",
            action_id=action.id,
        )
    result = {"status": "pending_approval", "action_id": action.id, "message": "a supervisor must approve this first"}
    step = _step(
        call,
        source=source,
        index=index,
        outcome="pending_approval",
        decision=decision.outcome,
        reason=decision.reason,
        action_id=action.id,
    )
    return CallOutcome(step, result=result, action=action)


def _execute(
    scope: CallScope,
    *,
    tool: Tool,
    call: ToolCall,
    source: StepSource,
    index: int,
    key: str,
    decision: Decision,
    acting: Principal | None = None,
    action_id: str | None = None,
) -> CallOutcome:
    """Claim `key` and run the write in one transaction (a `command` write: put its command in the outbox);
    a repeat of the key runs nothing."""

    def audited(action: AuditAction, **fields: Any) -> None:
        _record_call(scope, call, action=action, source=source, details={"idempotency_key": key}, principal=acting,
                     **fields)  # fmt: skip

    try:
        with scope.conn.transaction():
            claimed = approvals.claim_for_execution(
                scope.conn,
                idempotency_key=key,
                requires_approval=decision.requires_approval,
                tool_name=tool.name,
                ticket_id=scope.ticket.ref,
            )
            if not claimed:
                result = None
            elif tool.effect == "command":
                result = _issue_command(scope, tool=tool, call=call, key=key, acting=acting, action_id=action_id)
                audited(AuditAction.WRITE_EXECUTED, result_hash=audit.digest(result), decision="executed")
            else:
                result = scope.registry.call(
                    scope.conn, name=tool.name, arguments=call.arguments, context=scope.context
                )
                audited(AuditAction.WRITE_EXECUTED, result_hash=audit.digest(result), decision="executed")
    except ToolError as exc:
        audited(AuditAction.TOOL_CALL, decision="error", reason=str(exc))
        return _failed(call, source=source, index=index, outcome="error", decision=decision.outcome, reason=str(exc))
    if result is None:
        reason = "this write already ran for this ticket event; it is not run twice"
        audited(AuditAction.TOOL_CALL, decision="duplicate", reason=reason)
        return _failed(call, source=source, index=index, outcome="duplicate", decision=decision.outcome, reason=reason)
    scope.trusted.append(result)
    step = _step(
        call,
        source=source,
        index=index,
        outcome="executed",
        decision=decision.outcome,
        result_hash=audit.digest(result),
    )
    return CallOutcome(step, result=result)


def _issue_command(
    scope: CallScope, *, tool: Tool, call: ToolCall, key: str, acting: Principal | None, action_id: str | None
) -> dict[str, Any]:
    """Run the write's handler with its row changes captured, and put them in the outbox as one command.

    The local copy is left as it is: it changes when the system of record's change comes back through CDC.
    The result is what the handler computed (the state the command asks for), so the conversation goes on.
    """
    with commands.capture() as changes:
        result = scope.registry.call(scope.conn, name=tool.name, arguments=call.arguments, context=scope.context)
    if changes:
        command = Command(
            idempotency_key=key,
            system=tool.system,
            tool=tool.name,
            arguments=call.arguments,
            changes=changes,
            ticket_id=scope.ticket.ref,
            tenant=(acting or scope.principal).tenant,
            action_id=action_id,
        )
        commands.enqueue(scope.conn, command=command)
    return result


def carry_out_approved(
    conn: psycopg.Connection, *, action: PendingAction, registry: ToolRegistry, pack: packs.DomainPack
) -> CallOutcome:
    """Carry out an action a supervisor approved after the agent's turn (as its proposer, with the approver's id).

    The same claim as in a conversation guards it, so an action runs once whoever reaches it first.
    """
    source, _, ticket_id = action.ticket_id.partition(":")
    ticket = Ticket(source=source, ticket_id=ticket_id or source, event_id=f"approval:{action.id}",
                    tenant=action.tenant)  # fmt: skip
    acting = approvals.acting_principal(action)
    scope = CallScope(conn=conn, principal=acting, registry=registry, ticket=ticket, pack=pack)
    call = ToolCall(tool=action.tool_name, arguments=action.arguments)
    tool = registry.validate(name=call.tool, arguments=call.arguments)
    decision = Decision(allowed=True, reason=f"approved by {action.decided_by}", requires_approval=True)
    return _execute(
        scope,
        tool=tool,
        call=call,
        source="router",
        index=0,
        key=action.idempotency_key,
        decision=decision,
        acting=acting,
        action_id=action.id,
    )
