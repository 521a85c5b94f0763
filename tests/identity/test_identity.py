"""Principals, the agent identity, and operators from configuration."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from streamdesk.config import reset_settings
from streamdesk.identity import service as identity
from streamdesk.identity.config import IdentitySettings, Operator
from streamdesk.identity.exceptions import InvalidPrincipalError, UnknownOperatorError
from streamdesk.identity.models import Principal, Role, agent_for_customer


def test_the_agent_identity_acts_for_one_verified_customer() -> None:
    agent = agent_for_customer("mei_davis_8935", tenant="acme")
    assert agent.kind == "agent" and agent.is_agent and agent.customer_id == "mei_davis_8935"
    assert agent.roles == {Role.SERVICE_AGENT} and agent.tenant == "acme" and not agent.can_approve


def test_an_agent_without_a_customer_is_refused() -> None:
    with pytest.raises(InvalidPrincipalError, match="customer"):
        agent_for_customer("")
    with pytest.raises(InvalidPrincipalError, match="no customer_id"):
        Principal(kind="agent", id="bot")


def test_agent_and_person_roles_do_not_mix() -> None:
    with pytest.raises(InvalidPrincipalError, match="exactly service_agent"):
        Principal(kind="agent", id="bot", customer_id="c", roles=frozenset({Role.ADMIN}))
    with pytest.raises(InvalidPrincipalError, match="agent identity only"):
        Principal(kind="user", id="eve", roles=frozenset({Role.SERVICE_AGENT}))


def test_only_supervisors_and_admins_can_approve() -> None:
    for role in Role:
        if role is Role.SERVICE_AGENT:
            continue
        person = Principal(kind="user", id="p", roles=frozenset({role}))
        assert person.can_approve == (role in (Role.SUPERVISOR, Role.ADMIN))


def test_roles_serialise_sorted_and_round_trip() -> None:
    person = Principal(
        kind="user", id="p", roles=frozenset({Role.SUPERVISOR, Role.AUDITOR}), groups=frozenset({"b", "a"})
    )
    data = person.to_json()
    assert data["roles"] == ["auditor", "supervisor"] and data["groups"] == ["a", "b"]
    assert Principal.model_validate(data) == person
    assert Principal.model_validate(json.loads(json.dumps(data))) == person


def test_parse_reads_the_shorthand() -> None:
    user = Principal.parse("user:alice?roles=agent,auditor&groups=billing&tenant=acme")
    assert user.roles == {Role.AGENT, Role.AUDITOR} and user.groups == {"billing"} and user.tenant == "acme"
    agent = Principal.parse("agent:mei_davis_8935")
    assert agent.customer_id == "mei_davis_8935" and agent.roles == {Role.SERVICE_AGENT}
    with pytest.raises(InvalidPrincipalError, match="unknown role"):
        Principal.parse("user:bob?roles=janitor")
    with pytest.raises(InvalidPrincipalError, match="is not"):
        Principal.parse("bob")


def test_has_any_role_accepts_role_names() -> None:
    person = Principal(kind="user", id="p", roles=frozenset({Role.AGENT}))
    assert person.has_any_role({"agent", "admin"}) and not person.has_any_role({Role.ADMIN})


def test_operators_come_from_configuration() -> None:
    settings = IdentitySettings(
        operators={"sam": Operator(roles=[Role.SUPERVISOR], token=SecretStr("t0k3n-for-sam-0123"))}
    )
    sam = identity.operator(operator_id="sam", settings=settings)
    assert sam.kind == "user" and sam.roles == {Role.SUPERVISOR}
    assert identity.operator_for_token(token="t0k3n-for-sam-0123", settings=settings) == sam
    with pytest.raises(UnknownOperatorError, match="mallory"):
        identity.operator(operator_id="mallory", settings=settings)
    with pytest.raises(UnknownOperatorError):
        identity.operator_for_token(token="", settings=settings)


def test_the_agent_identity_comes_from_settings() -> None:
    settings = IdentitySettings(agent_id="helpdesk-bot", default_tenant="acme")
    agent = identity.agent_identity(customer_id="mei_davis_8935", settings=settings)
    assert agent.id == "helpdesk-bot" and agent.tenant == "acme" and agent.customer_id == "mei_davis_8935"


def test_operators_can_be_set_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", '{"ann": {"roles": ["admin"], "tenant": "acme"}}')
    reset_settings()
    ann = identity.operator(operator_id="ann")
    assert ann.roles == {Role.ADMIN} and ann.tenant == "acme"


def test_there_is_one_principal_type() -> None:
    """Retrieval, policy, audit and the API share identity's Principal; no package defines its own."""
    import streamdesk.retrieval.models as retrieval

    assert not hasattr(retrieval, "Principal")
