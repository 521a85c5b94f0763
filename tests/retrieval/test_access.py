"""The access rule and principal specs, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamdesk.identity.exceptions import InvalidPrincipalError
from streamdesk.identity.models import Principal
from streamdesk.retrieval import access
from streamdesk.retrieval.config import RetrievalSettings
from streamdesk.retrieval.exceptions import InvalidFiltersError
from streamdesk.retrieval.models import Filters

SETTINGS = RetrievalSettings()


def row(level: str, groups: tuple[str, ...] = (), tenant: str = "default", **extra: object) -> dict[str, object]:
    return {"access_level": level, "access_groups": list(groups), "tenant": tenant, **extra}


def test_principal_specs_parse_into_users_and_customer_agents() -> None:
    alice = Principal.parse("user:alice?roles=agent,admin&groups=fraud&tenant=acme")
    assert (alice.kind, alice.id, alice.roles, alice.groups, alice.tenant) == (
        "user",
        "alice",
        {"agent", "admin"},
        {"fraud"},
        "acme",
    )
    agent = Principal.parse("agent:cust-42")
    assert agent.kind == "agent" and agent.customer_id == "cust-42" and agent.tenant == "default"


@pytest.mark.parametrize("spec", ["alice", "robot:x", "user:", "user:a?colour=red", "agent:"])
def test_malformed_principal_specs_are_refused_with_the_expected_form(spec: str) -> None:
    with pytest.raises(InvalidPrincipalError, match="user:ID"):
        Principal.parse(spec)


def test_an_agent_principal_needs_a_customer() -> None:
    with pytest.raises(InvalidPrincipalError, match="customer_id"):
        Principal(kind="agent", id="bot")


def test_employees_read_internal_the_customer_agent_and_outsiders_do_not() -> None:
    employee = access.scope_predicate(Principal.parse("user:a?roles=viewer"), settings=SETTINGS)
    outsider = access.scope_predicate(Principal.parse("user:b"), settings=SETTINGS)
    bot = access.scope_predicate(Principal.parse("agent:c1"), settings=SETTINGS)
    assert employee.allows(row("internal")) and employee.allows(row("public"))
    assert not outsider.allows(row("internal")) and outsider.allows(row("public"))
    assert not bot.allows(row("internal")) and bot.allows(row("public"))
    configured = RetrievalSettings(customer_agent_reads_internal=True)
    assert access.scope_predicate(Principal.parse("agent:c1"), settings=configured).allows(row("internal"))


def test_restricted_needs_a_shared_group_and_the_tenant_must_match() -> None:
    member = access.scope_predicate(Principal.parse("user:a?roles=agent&groups=fraud,vip"), settings=SETTINGS)
    assert member.allows(row("restricted", ("fraud",)))
    assert not member.allows(row("restricted", ("billing",)))
    assert not member.allows(row("restricted", ()))
    assert not member.allows(row("public", tenant="other"))
    bot = access.scope_predicate(
        Principal(kind="agent", id="x", customer_id="c", groups=frozenset({"fraud"})), settings=SETTINGS
    )
    assert not bot.allows(row("restricted", ("fraud",)))


def test_the_sql_and_the_description_come_from_the_same_tree() -> None:
    predicate = access.search_predicate(
        Principal.parse("user:a?roles=agent&groups=fraud"),
        Filters(sources=frozenset({"kb"}), occurred_after=datetime(2026, 1, 1, tzinfo=UTC)),
        settings=SETTINGS,
    )
    text, params = access.named_sql(predicate, alias="c")
    assert "c.tenant = %(f0)s" in text and "c.access_groups && %(f3)s::text[]" in text
    assert params["f0"] == "default" and params["f3"] == ["fraud"]
    assert predicate.describe().startswith("tenant = 'default' AND (access_level = ANY('{internal,public}'")
    assert access.scope_key(Principal.parse("user:a?roles=agent"), settings=SETTINGS) == access.scope_key(
        Principal.parse("user:b?roles=viewer"), settings=SETTINGS
    )


def test_a_time_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidFiltersError, match="occurred_after"):
        Filters(occurred_after=datetime(2026, 2, 1, tzinfo=UTC), occurred_before=datetime(2026, 1, 1, tzinfo=UTC))
