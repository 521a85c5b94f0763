"""Authorize tool calls against the rules: role, argument ownership, trusted arguments, amount limits.

Fail-closed throughout: an unknown tool, a kind that contradicts the rules, an order whose owner
cannot be established, a missing or malformed amount, or an agent write without trusted values is
denied, never allowed by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Unpack

import psycopg

from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.guardrails import service as guardrails
from streamdesk.identity.models import Principal
from streamdesk.policy.config import PolicySettings, get_policy_settings
from streamdesk.policy.models import Decision, OwnerLookup, Permission, RouteRule, Rules, ToolCall
from streamdesk.policy.rules import load_rules


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def permitted_tools(*, principal: Principal, tools: Iterable[str], settings: PolicySettings | None = None) -> list[str]:
    """The tools among `tools` that some role of the principal may call; the rest cannot even be generated."""
    rules = load_rules(settings=settings)
    return [
        name for name in tools if name in rules.permissions and principal.has_any_role(rules.permissions[name].roles)
    ]


def routes(settings: PolicySettings | None = None) -> frozenset[str]:
    """Every route the rules name (`METHOD /template`), public or not."""
    return frozenset(load_rules(settings=settings).routes)


def route_rule(*, route: str, settings: PolicySettings | None = None) -> RouteRule | None:
    """The rule for HTTP route `METHOD /path` (the path template, e.g. `GET /tickets/{source}/{ticket_id}`)."""
    return load_rules(settings=settings).routes.get(route)


def authorize_route(*, principal: Principal | None, route: str, settings: PolicySettings | None = None) -> Decision:
    """Decide one HTTP request: a route with no rule is denied; a public one is allowed to anyone."""
    settings = settings or get_policy_settings()
    rules = load_rules(settings=settings)
    rule = rules.routes.get(route)
    if rule is None:
        decision = _deny(
            f"route {route!r} has no rule; add it under `routes:` in {settings.rules_path.name}", "unknown_route"
        )
    elif rule.public:
        decision = Decision(allowed=True, reason=f"{route} is public", rule=f"route:{route}")
    elif principal is None:
        decision = _deny(f"{route} needs an authenticated caller", f"route:{route}")
    elif not principal.has_any_role(rule.roles):
        held = ", ".join(principal.role_names) or "no role"
        allowed = ", ".join(sorted(rule.roles)) or "nobody"
        decision = _deny(
            f"{principal.kind} {principal.id!r} ({held}) may not call {route}; allowed roles: {allowed}",
            f"route:{route}",
        )
    else:
        decision = Decision(
            allowed=True, reason=f"{', '.join(principal.role_names)} may call {route}", rule=f"route:{route}"
        )
    return dataclasses.replace(decision, policy_version=rules.policy_version)


def _record_rbac(
    conn: psycopg.Connection, principal: Principal, decision: Decision, *, details: dict[str, Any], **fields: Any
) -> None:
    """Append an RBAC decision (outcome, reason, policy version; the rule first in `details`) to the audit trail."""
    event = AuditEvent.for_principal(
        principal,
        action=AuditAction.RBAC_DECISION,
        decision=decision.outcome,
        reason=decision.reason,
        policy_version=decision.policy_version,
        details={"rule": decision.rule, **details},
        **fields,
    )
    audit.append(conn, event=event)


def record_route_denial(conn: psycopg.Connection, *, principal: Principal, route: str, decision: Decision) -> None:
    """Append a denied HTTP request of an authenticated caller to the audit trail (an RBAC decision on a route)."""
    _record_rbac(conn, principal, decision, tool_name=route, details={"kind": "route"})


def order_owner_lookup(conn: psycopg.Connection, *, tenant: str) -> OwnerLookup:
    """An owner lookup over the entity store: the one customer id recorded on the order, within `tenant`."""

    def owner_of(order_id: str) -> str | None:
        rows = conn.execute(
            "SELECT DISTINCT coalesce(attributes->>'customer_id', attributes->>'user_id') FROM entities "
            "WHERE entity_type = 'order' AND external_id = %s AND tenant = %s AND NOT deleted",
            (order_id, tenant),
        ).fetchall()
        return rows[0][0] if len(rows) == 1 else None

    return owner_of


def _ownership(
    principal: Principal, permission: Permission, arguments: Mapping[str, Any], owner_of: OwnerLookup | None
) -> Decision | None:
    """A denial when an owned argument names a record outside the agent's verified customer."""
    for argument, resource in permission.owns.items():
        if argument not in arguments:
            continue
        value = arguments[argument]
        if resource == "customer" and value != principal.customer_id:
            return _deny(
                f"{argument}={value!r} is not the verified customer {principal.customer_id!r}; "
                "the agent may only act on the ticket's own customer",
                f"ownership:{argument}",
            )
        if resource == "order":
            owner = owner_of(str(value)) if owner_of is not None and isinstance(value, str) else None
            if owner != principal.customer_id:
                found = "cannot be established" if owner is None else f"is {owner!r}"
                return _deny(
                    f"the owner of {argument}={value!r} {found}, not the verified customer {principal.customer_id!r}; "
                    "look the order up in the entity store first",
                    f"ownership:{argument}",
                )
    return None


def _amount_decision(
    permission: Permission, arguments: Mapping[str, Any], amount: Any, settings: PolicySettings
) -> Decision | None:
    """A denial over the hard limit or with a malformed amount; an approval over the approval limit."""
    name = permission.tool_name
    raw = arguments.get(permission.amount_argument) if permission.amount_argument else amount
    if raw is None:
        return _needs_approval(
            f"{name} moves money but no amount was given; a supervisor must approve it "
            f"(pass {permission.amount_argument or 'amount='} to decide automatically)",
            f"amount:{name}:unknown",
        )
    value = _amount(raw)
    if value is None:
        return _deny(
            f"amount {raw!r} of {name} is not a non-negative number; pass e.g. 49.99", f"amount:{name}:invalid"
        )
    hard = settings.hard_limits.get(name)
    if hard is not None and value > Decimal(str(hard)):
        return _deny(
            f"amount {value} of {name} is above the hard limit {hard}; escalate to a human", f"amount:{name}:hard_limit"
        )
    limit = settings.approval_limits.get(name)
    if limit is not None and value > Decimal(str(limit)):
        return _needs_approval(
            f"amount {value} of {name} is above the approval limit {limit}; a supervisor must approve it",
            f"amount:{name}:approval_limit",
        )
    return None


def _deny(reason: str, rule: str) -> Decision:
    return Decision(allowed=False, reason=reason, rule=rule)


def _needs_approval(reason: str, rule: str) -> Decision:
    return Decision(allowed=True, reason=reason, requires_approval=True, rule=rule)


def _agent_decision(
    principal: Principal,
    permission: Permission,
    arguments: Mapping[str, Any],
    trusted_values: Iterable[Any] | None,
    owner_of: OwnerLookup | None,
) -> Decision | None:
    """A denial when the agent identity strays outside its customer or uses untrusted write arguments."""
    denial = _ownership(principal, permission, arguments, owner_of)
    if denial is not None or permission.kind != "write":
        return denial
    name = permission.tool_name
    if trusted_values is None:
        return _deny(
            f"{name} is a write by the agent identity and no trusted values were given; "
            "pass the earlier tool results as trusted_values",
            "provenance:missing",
        )
    trusted = [*trusted_values, principal.customer_id]
    ok, offending = guardrails.arguments_are_trusted(arguments=arguments, trusted_values=trusted)
    if ok:
        return None
    return _deny(
        f"{name} arguments {', '.join(offending)} did not come from a trusted tool result or the verified "
        "customer; look them up first",
        "provenance:untrusted",
    )


def _decide(call: ToolCall, *, settings: PolicySettings, rules: Rules) -> Decision:
    principal, tool_name, arguments = call["principal"], call["tool_name"], call["arguments"]
    tool_kind = call["tool_kind"]
    permission = rules.permissions.get(tool_name)
    if permission is None:
        return _deny(
            f"tool {tool_name!r} is not in the rules; declare it in {settings.rules_path.name} first",
            "unknown_tool",
        )
    if tool_kind != permission.kind:
        return _deny(
            f"{tool_name} was called as {tool_kind!r} but the rules say {permission.kind!r}; fix the tool's kind",
            f"kind:{tool_name}",
        )
    if not principal.has_any_role(permission.roles):
        held = ", ".join(principal.role_names) or "no role"
        allowed = ", ".join(sorted(permission.roles)) or "nobody"
        return _deny(
            f"{principal.kind} {principal.id!r} ({held}) may not call {tool_name}; allowed roles: {allowed}",
            f"role:{tool_name}",
        )
    if principal.is_agent:
        denial = _agent_decision(principal, permission, arguments, call.get("trusted_values"), call.get("owner_of"))
        if denial is not None:
            return denial
    if permission.moves_money:
        verdict = _amount_decision(permission, arguments, call.get("amount"), settings)
        if verdict is not None:
            return verdict
    if tool_name in settings.always_approve:
        return _needs_approval(
            f"{tool_name} is high-risk: a supervisor must approve every call", f"approval:{tool_name}"
        )
    return Decision(
        allowed=True, reason=f"{', '.join(principal.role_names)} may call {tool_name}", rule=f"role:{tool_name}"
    )


def authorize(*, settings: PolicySettings | None = None, **call: Unpack[ToolCall]) -> Decision:
    """Decide one tool call: role, kind, ownership (agent identity), trusted arguments (agent writes), amounts.

    `trusted_values` are earlier trusted tool results (nested JSON is fine); the agent identity's writes
    are denied without them. `amount` is the money a tool moves when its arguments do not carry it
    (returns, exchanges). `owner_of` maps an order id to its customer; without it the agent identity
    cannot touch orders.
    """
    settings = settings or get_policy_settings()
    rules = load_rules(settings=settings)
    return dataclasses.replace(_decide(call, settings=settings, rules=rules), policy_version=rules.policy_version)


def enforce(
    conn: psycopg.Connection,
    *,
    ticket_id: str,
    trace_id: str | None = None,
    span_id: str | None = None,
    settings: PolicySettings | None = None,
    **call: Unpack[ToolCall],
) -> Decision:
    """Authorize a tool call and append the decision (denials included) to the audit trail.

    Orders are looked up in the entity store on `conn` unless `owner_of` is given. The record commits
    with the caller's transaction (or at once on an autocommit connection).
    """
    principal, amount = call["principal"], call.get("amount")
    call["owner_of"] = call.get("owner_of") or order_owner_lookup(conn, tenant=principal.tenant)
    decision = authorize(settings=settings, **call)
    _record_rbac(
        conn,
        principal,
        decision,
        ticket_id=ticket_id,
        tool_name=call["tool_name"],
        arguments=dict(call["arguments"]),
        trace_id=trace_id,
        span_id=span_id,
        details={"amount": None if amount is None else str(amount)},
    )
    return decision
