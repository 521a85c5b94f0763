"""Search on the real database and embedder: scope is never crossed, deleted documents vanish, citations hold."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamdesk import db
from streamdesk.identity.models import Principal
from streamdesk.retrieval import access, service
from streamdesk.retrieval.config import RetrievalSettings
from streamdesk.retrieval.models import Filters
from tests.retrieval.conftest import DOC_TYPES, EPOCH, GROUPS, SOURCES, TENANTS, TOPICS

pytestmark = [pytest.mark.slow, pytest.mark.stack]
SETTINGS = RetrievalSettings()
ROW_COLUMNS = "source, external_id, chunk_no, tenant, access_level, access_groups, doc_type, occurred_at, text"


def rows(url: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    with db.connect(url) as conn:
        cur = conn.execute(f"SELECT {ROW_COLUMNS} FROM chunks")
        names = [d.name for d in cur.description or ()]
        return {(r[0], r[1], r[2]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def plainly_visible(principal: Principal, row: dict[str, Any]) -> bool:
    """The issue's rule, written out independently of `access`."""
    if row["tenant"] != principal.tenant:
        return False
    if row["access_level"] == "public":
        return True
    if row["access_level"] == "internal":
        return principal.kind == "user" and bool(
            principal.roles & {"viewer", "agent", "supervisor", "admin", "auditor"}
        )
    return principal.kind == "user" and bool(set(row["access_groups"]) & principal.groups)


principals = st.one_of(
    st.builds(
        lambda ident, roles, groups, tenant: Principal(
            kind="user", id=ident, roles=frozenset(roles), groups=frozenset(groups), tenant=tenant
        ),
        st.sampled_from(["alice", "bob"]),
        st.sets(st.sampled_from(["viewer", "agent", "admin", "auditor", "supervisor"]), max_size=2),
        st.sets(st.sampled_from([*GROUPS, "nobody"]), max_size=2),
        st.sampled_from([*TENANTS, "ghost"]),
    ),
    st.builds(
        lambda customer, tenant: Principal(kind="agent", id="bot", customer_id=customer, tenant=tenant),
        st.sampled_from(["c1", "c2"]),
        st.sampled_from(TENANTS),
    ),
)
filters = st.builds(
    lambda sources, types, after, span: Filters(
        sources=frozenset(sources),
        doc_types=frozenset(types),
        occurred_after=EPOCH + timedelta(days=after) if after is not None else None,
        occurred_before=EPOCH + timedelta(days=after + span) if after is not None and span else None,
    ),
    st.sets(st.sampled_from(SOURCES), max_size=2),
    st.sets(st.sampled_from(DOC_TYPES), max_size=2),
    st.one_of(st.none(), st.integers(0, 300)),
    st.one_of(st.none(), st.integers(1, 200)),
)
queries = st.lists(st.sampled_from([*TOPICS, "card", "money", "delivery", "zebra", "the"]), min_size=1, max_size=4)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    principal=principals,
    narrowing=filters,
    words=queries,
    mode=st.sampled_from(["hybrid", "vector", "lexical"]),
    k=st.integers(1, 12),
)
def test_no_chunk_outside_the_principals_scope_is_ever_returned(
    kb_url: str, principal: Principal, narrowing: Filters, words: list[str], mode: Any, k: int
) -> None:
    table = rows(kb_url)
    oracle = access.search_predicate(principal, narrowing, settings=SETTINGS)
    allowed = [key for key, row in table.items() if oracle.allows(row)]
    with db.connect(kb_url) as conn:
        result = service.search(
            conn=conn,
            query=" ".join(words),
            principal=principal,
            filters=narrowing,
            k=k,
            mode=mode,
            settings=SETTINGS,
        )
    found = [(h.citation.source, h.citation.external_id, h.citation.chunk_no) for h in result.hits]
    for key in found:
        assert plainly_visible(principal, table[key]), f"{key} is outside {principal.describe()}"
        assert oracle.allows(table[key]), f"{key} breaks the applied filter {result.applied_filter}"
    assert len(found) == len(set(found))
    if mode in ("hybrid", "vector"):
        assert len(found) == min(k, len(allowed)), "the vector arm must fill k from the rows in scope"
    assert result.applied_filter == oracle.describe()


def test_hits_carry_citations_and_the_filter_applied(kb_url: str) -> None:
    principal = Principal.parse("user:alice?roles=agent&groups=fraud")
    with db.connect(kb_url) as conn:
        result = service.search(conn=conn, query="my card payment was declined abroad", principal=principal, k=5)
    assert result.hits and result.plan in ("index", "exact")
    top = result.hits[0]
    assert top.citation.document_id == f"{top.citation.source}:{top.citation.external_id}"
    assert top.citation.title and top.citation.chunk_no == 0 and top.citation.char_end > top.citation.char_start
    assert "travel" in top.text.lower() or "card" in top.text.lower()
    assert result.applied_filter.startswith("tenant = 'default'")
    assert "access_groups && '{fraud}'" in result.applied_filter


def test_the_title_weighs_more_than_the_body_in_the_lexical_arm(kb_url: str) -> None:
    principal = Principal.parse("user:alice?roles=admin")
    with db.connect(kb_url) as conn:
        result = service.search(conn=conn, query="warranty", principal=principal, k=10, mode="lexical")
    assert result.hits
    titled = [h.citation.title.lower().startswith("warranty") for h in result.hits]
    assert titled[0] and titled == sorted(titled, reverse=True), "title matches must rank above body-only ones"


def test_filters_narrow_by_source_type_and_time(kb_url: str) -> None:
    principal = Principal.parse("user:alice?roles=admin")
    after, before = EPOCH, EPOCH + timedelta(days=200)
    narrowing = Filters(
        sources=frozenset({"kb"}), doc_types=frozenset({"faq"}), occurred_after=after, occurred_before=before
    )
    with db.connect(kb_url) as conn:
        result = service.search(conn=conn, query="refund", principal=principal, filters=narrowing, k=20)
    assert result.hits
    for hit in result.hits:
        assert hit.citation.source == "kb" and hit.doc_type == "faq"
        assert hit.occurred_at is not None and after <= hit.occurred_at < before


def test_a_principal_of_another_tenant_sees_nothing(kb_url: str) -> None:
    with db.connect(kb_url) as conn:
        result = service.search(
            conn=conn, query="refund", principal=Principal.parse("user:x?roles=admin&tenant=nowhere")
        )
    assert result.hits == []


def test_the_search_command_prints_citations_and_the_filter(kb_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from streamdesk.cli import retrieval as retrieval_cli
    from streamdesk.config import reset_settings

    monkeypatch.setenv("DATABASE_URL", kb_url)
    reset_settings()
    runner = CliRunner()
    shown = runner.invoke(retrieval_cli.app, ["search", "reset my password", "--as", "user:z?roles=admin", "-k", "2"])
    assert shown.exit_code == 0, shown.output
    assert "Password guide" in shown.output and "chunk 0" in shown.output
    as_json = runner.invoke(retrieval_cli.app, ["search", "password", "--as", "user:z?roles=admin", "--json"])
    data = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert data["applied_filter"].startswith("tenant = 'default'") and data["hits"][0]["citation"]["document_id"]
