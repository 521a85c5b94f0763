"""Argument constraints: ownership, provenance, amount limits, configurable approvals, and the rules file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamdesk import domains
from streamdesk.guardrails import patterns
from streamdesk.identity.models import Role
from streamdesk.policy import rules
from streamdesk.policy import service as policy
from streamdesk.policy.config import PolicySettings
from streamdesk.policy.exceptions import InvalidRulesError
from streamdesk.policy.models import Decision
from tests.policy.conftest import CUSTOMER, ORDER, OTHER_CUSTOMER, OTHER_ORDER, TRUSTED, principal_for

OWNERS = {ORDER: CUSTOMER, OTHER_ORDER: OTHER_CUSTOMER}
AGENT = principal_for(Role.SERVICE_AGENT)
HUMAN = principal_for(Role.AGENT)


def decide(tool: str, arguments: dict[str, Any], **kwargs: Any) -> Decision:
    kind = "read" if tool.startswith(("get_", "find_")) else "write"
    options: dict[str, Any] = {"principal": AGENT, "trusted_values": TRUSTED, "owner_of": OWNERS.get}
    options.update(kwargs)
    return policy.authorize(tool_name=tool, tool_kind=kind, arguments=arguments, **options)


def test_another_customers_order_is_denied_to_the_agent() -> None:
    decision = decide("get_order_details", {"order_id": OTHER_ORDER})
    assert decision.outcome == "denied" and decision.rule == "ownership:order_id"
    assert OTHER_CUSTOMER in decision.reason and CUSTOMER in decision.reason


def test_another_customers_profile_is_denied_to_the_agent() -> None:
    assert decide("get_user_details", {"user_id": OTHER_CUSTOMER}).rule == "ownership:user_id"
    assert decide("modify_user_address", {"user_id": OTHER_CUSTOMER, "zip": "1"}).outcome == "denied"


def test_an_order_whose_owner_is_unknown_is_denied() -> None:
    assert decide("get_order_details", {"order_id": "#W0000000"}).outcome == "denied"
    assert decide("get_order_details", {"order_id": ORDER}, owner_of=None).outcome == "denied"


def test_people_with_the_agent_role_may_act_for_any_customer() -> None:
    assert decide("get_order_details", {"order_id": OTHER_ORDER}, principal=HUMAN).outcome == "allowed"


def test_refund_over_the_approval_limit_needs_approval() -> None:
    decision = decide("refund", {"order_id": ORDER, "amount": 930.46})
    assert decision.outcome == "approval_required" and decision.rule == "amount:refund:approval_limit"
    assert decide("refund", {"order_id": ORDER, "amount": 54.04}).outcome == "allowed"


def test_refund_over_the_hard_limit_is_denied_even_for_an_admin() -> None:
    decision = decide("refund", {"order_id": ORDER, "amount": 2500}, principal=principal_for(Role.ADMIN))
    assert decision.outcome == "denied" and decision.rule == "amount:refund:hard_limit"


@pytest.mark.parametrize("amount", [-5, "lots", float("nan"), True])
def test_a_malformed_amount_is_denied(amount: Any) -> None:
    decision = decide("refund", {"order_id": ORDER, "amount": amount}, principal=HUMAN)
    assert decision.outcome == "denied" and decision.rule == "amount:refund:invalid"


def test_returns_and_exchanges_use_the_amount_the_caller_passes() -> None:
    arguments = {"order_id": ORDER, "item_ids": ["2366567022"], "payment_method_id": "credit_card_1061405"}
    assert decide("return_delivered_order_items", arguments, amount=54.04).outcome == "allowed"
    assert decide("return_delivered_order_items", arguments, amount=930.46).outcome == "approval_required"
    unknown = decide("exchange_delivered_order_items", arguments)
    assert unknown.outcome == "approval_required" and unknown.rule.endswith(":unknown")


def test_agent_writes_need_trusted_values() -> None:
    decision = decide("cancel_pending_order", {"order_id": ORDER, "reason": "x"}, trusted_values=None)
    assert decision.outcome == "denied" and decision.rule == "provenance:missing"


def test_agent_writes_with_invented_ids_are_denied() -> None:
    arguments = {"order_id": ORDER, "item_ids": ["9999999999"], "payment_method_id": "credit_card_1061405"}
    decision = decide("return_delivered_order_items", arguments, amount=10)
    assert decision.outcome == "denied" and decision.rule == "provenance:untrusted"
    assert "item_ids[0]='9999999999'" in decision.reason


def test_the_verified_customer_counts_as_trusted() -> None:
    decision = decide("modify_user_address", {"user_id": CUSTOMER, "zip": "80217"}, trusted_values=[])
    assert decision.outcome == "allowed"


def test_unknown_tools_and_wrong_kinds_are_denied() -> None:
    assert decide("drop_database", {}, principal=principal_for(Role.ADMIN)).rule == "unknown_tool"
    wrong = policy.authorize(principal=HUMAN, tool_name="refund", tool_kind="read", arguments={"amount": 1})
    assert wrong.outcome == "denied" and wrong.rule == "kind:refund"


def test_which_tools_always_need_approval_is_configurable() -> None:
    relaxed = PolicySettings(always_approve=[])
    assert decide("cancel_pending_order", {"order_id": ORDER}, settings=relaxed).outcome == "allowed"
    strict = PolicySettings(always_approve=["update_ticket"], approval_limits={"refund": 10.0})
    assert decide("update_ticket", {"ticket_id": "T-100"}, settings=strict).outcome == "approval_required"
    assert decide("refund", {"order_id": ORDER, "amount": 54.04}, settings=strict).outcome == "approval_required"


def test_decisions_carry_the_policy_version() -> None:
    version = rules.load_rules().policy_version
    assert decide("get_order_details", {"order_id": ORDER}).policy_version == version
    assert version.startswith("2026-11-23.1+")


def test_rules_cover_exactly_the_tools_the_guardrails_know() -> None:
    assert set(rules.load_rules().permissions) == {*domains.get_pack().tool_names, *patterns.DESK_TOOL_NAMES}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("roles: {janitor: [calculate]}\ntools: {calculate: {kind: read}}", "role 'janitor'"),
        ("roles: {viewer: [nuke]}\ntools: {calculate: {kind: read}}", "neither a group nor a tool"),
        ("tools: {calculate: {kind: execute}}", "kind 'execute'"),
        ("tools: {refund: {kind: write, owns: {order_id: planet}}}", "owns 'planet'"),
        ("tools: [unclosed", "not valid YAML"),
    ],
)
def test_a_broken_rules_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(InvalidRulesError, match=message):
        rules.load_rules(settings=PolicySettings(rules_path=path))


def test_a_missing_rules_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRulesError, match="cannot be read"):
        rules.load_rules(settings=PolicySettings(rules_path=tmp_path / "none.yaml"))
