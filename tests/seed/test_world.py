"""The seeded world on the real stack, from the bundled files alone (no ../shared): the retail desk searches retail
help articles and its internal policy, never the banking corpus, which lives in its own tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from streamdesk import db
from streamdesk.identity.models import Principal, agent_for_customer
from streamdesk.retrieval import service as retrieval
from streamdesk.retrieval.models import SearchResult
from streamdesk.seed import knowledge, service, taubench, tickets
from tests.ingest.conftest import IngestStack, running_ingest_stack

pytestmark = [pytest.mark.slow, pytest.mark.stack]

RETAIL_DESK = ("retail-help-", "tau2-retail-policy-")


@pytest.fixture(scope="module")
def seeded(
    database_url: str, truncate: Callable[[str], None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IngestStack]:
    """What `streamdesk up --seed` replays, and the banking corpus, ingested by the real worker; no shared data."""
    with running_ingest_stack(database_url, truncate, tmp_path_factory.mktemp("world")) as stack:
        summary = service.replay(
            bootstrap_servers=stack.bootstrap_servers,
            shared_data=tmp_path_factory.mktemp("no-shared-data"),
            what=("taubench", "knowledge", "banking", "requesters", "tickets"),
            progress=False,
        )
        assert all(source.startswith(str(knowledge.BUNDLED_DIR)) for source in summary.sources.values())
        articles = summary.counts["raw.mapped"]
        stack.wait_for(
            lambda: stack.query("SELECT count(DISTINCT external_id) FROM chunks WHERE source = 'kb'")[0][0] == articles,
            timeout_s=600,
            what=f"{articles} seeded articles chunked and embedded",
        )
        samples = len(tickets.TEMPLATES)
        stack.wait_for(
            lambda: stack.query("SELECT count(*) FROM tickets WHERE source = 'zendesk'")[0][0] == samples,
            timeout_s=300,
            what=f"{samples} sample tickets stored",
        )
        yield stack


def search(stack: IngestStack, query: str, principal: Principal, k: int = 5) -> SearchResult:
    with db.connect(stack.database_url) as conn:
        return retrieval.search(conn=conn, query=query, principal=principal, k=k)


def test_banking_documents_are_in_their_own_tenant(seeded: IngestStack) -> None:
    counts = dict(seeded.query("SELECT tenant, count(*) FROM documents WHERE source = 'kb' GROUP BY tenant"))
    retail = len(knowledge.help_articles()) + len(knowledge.policy_articles(path=knowledge.BUNDLED_POLICY))
    assert counts == {"default": retail, knowledge.BANKING_TENANT: 50}
    outside = seeded.query(
        "SELECT external_id FROM documents WHERE tenant = 'default' AND external_id NOT LIKE 'retail-help-%%' "
        "AND external_id NOT LIKE 'tau2-retail-policy-%%'"
    )
    assert outside == []


def test_the_retail_desk_answers_refund_timing_from_retail_help_articles(seeded: IngestStack) -> None:
    world = taubench.load_world(path=taubench.BUNDLED_DB)
    sample = next(s for s in tickets.sample_tickets(world) if s.kind == "policy")
    result = search(seeded, f"{sample.subject} {sample.body}", agent_for_customer(sample.user_id))
    ids = [hit.citation.external_id for hit in result.hits]
    assert ids and all(external_id.startswith("retail-help-") for external_id in ids)
    assert {hit.access_level for hit in result.hits} == {"public"}
    assert ids[0] in {"retail-help-how-long-refunds-take", "retail-help-cancelling-an-order"}
    assert "5 to 7 business days" in result.hits[0].text


def test_no_retail_search_ever_returns_a_banking_document(seeded: IngestStack) -> None:
    employee = Principal.parse("user:ana?roles=supervisor")
    for query in (
        "How do I order a replacement credit card?",
        "refund to my credit card",
        "dispute a charge on my statement",
    ):
        for principal in (agent_for_customer("mei_davis_8935"), employee):
            ids = [hit.citation.external_id for hit in search(seeded, query, principal, k=10).hits]
            assert all(external_id.startswith(RETAIL_DESK) for external_id in ids), (query, ids)
    banking = search(seeded, "replacement credit card", Principal.parse("user:bo?roles=supervisor&tenant=banking"))
    assert banking.hits and not any(hit.citation.external_id.startswith(RETAIL_DESK) for hit in banking.hits)


def test_the_internal_policy_is_for_employees_never_for_the_customer_facing_agent(seeded: IngestStack) -> None:
    query = "authenticate the user identity by locating their user id via email, or via name + zip code"
    employee = search(seeded, query, Principal.parse("user:ana?roles=agent"))
    assert any(hit.citation.external_id.startswith("tau2-retail-policy-") for hit in employee.hits)
    customer_facing = search(seeded, query, agent_for_customer("mei_davis_8935"), k=10)
    assert customer_facing.hits and {hit.access_level for hit in customer_facing.hits} == {"public"}
    assert customer_facing.hits[0].citation.external_id == "retail-help-verifying-who-you-are"


def test_every_sample_ticket_is_about_a_stored_customer_and_order(seeded: IngestStack) -> None:
    world = taubench.load_world(path=taubench.BUNDLED_DB)
    for sample in tickets.sample_tickets(world):
        assert seeded.query(
            "SELECT 1 FROM entities WHERE entity_type = 'customer' AND external_id = %s AND NOT deleted",
            sample.user_id,
        )
        if sample.order_id is not None:
            [(owner,)] = seeded.query(
                "SELECT attributes->>'user_id' FROM entities WHERE entity_type = 'order' AND external_id = %s",
                sample.order_id,
            )
            assert owner == sample.user_id


def test_the_stored_sample_tickets_carry_their_subject_and_kind(seeded: IngestStack) -> None:
    rows = {
        ticket_id: (subject, kind)
        for ticket_id, subject, kind in seeded.query(
            "SELECT ticket_id, subject, tags[2] FROM tickets WHERE source = 'zendesk'"
        )
    }
    samples = tickets.sample_tickets(taubench.load_world(path=taubench.BUNDLED_DB))
    assert rows == {
        ticket_id: (sample.subject, sample.kind)
        for ticket_id, sample in zip(tickets.ticket_ids(), samples, strict=True)
    }
