"""Console fixtures: operators per role, and a ticket with a draft answer and a pending action seeded through
the real stores (tickets, answers, approvals, dead letters, the adapter registry)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from streamdesk.agent.answers import Answer, TraceStep
from streamdesk.config import reset_settings
from streamdesk.contracts import DocumentEvent, Requester, TicketEvent, utcnow
from streamdesk.identity.models import agent_for_customer
from streamdesk.policy import approvals
from streamdesk.policy.models import PendingAction
from streamdesk.training import registry
from streamdesk.training.kto_trainer import CURVES_FILE, save_curves
from streamdesk.training.models import AdapterVersion
from tests.factories import stored_dead_letter, stored_draft, stored_ticket
from tests.retrieval import factories as documents

OPERATORS = {
    "ana": {"roles": ["agent"], "token": "ana-token-0123456789"},
    "sam": {"roles": ["supervisor"], "token": "sam-token-0123456789"},
    "ada": {"roles": ["auditor"], "token": "ada-token-0123456789"},
    "vic": {"roles": ["viewer"], "token": "vic-token-0123456789"},
}
CUSTOMER = "mei_davis_8935"
SOURCE = "zendesk"
TICKET = "T-1001"
TICKET_REF = f"{SOURCE}:{TICKET}"
ORDER = "#W2890441"
DRAFT_TEXT = (
    "Hi Mei, thanks for reaching out. Your order #W2890441 was delivered on 12 November, so it is inside the "
    "30-day return window. I have started a refund of $54.04 to your original card; it usually appears within "
    "5-7 business days."
)
CITATIONS = ["kb:returns-policy#0", "kb:refund-timing#1"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a console page embeds in its forms."""
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@pytest.fixture
def operators(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, object]]:
    """Four operators, one per role, with API tokens."""
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(OPERATORS))
    reset_settings()
    return OPERATORS


def seed_ticket(conn: psycopg.Connection, *, ticket_id: str = TICKET) -> TicketEvent:
    """A `created` ticket event stored through the ticket store."""
    return stored_ticket(
        conn,
        ticket_id,
        source=SOURCE,
        occurred_at=utcnow() - timedelta(minutes=5),
        subject="Refund for my delivered order",
        body=(
            "Hello, the water bottle in order #W2890441 leaks. It arrived last week. "
            "Can I get my money back, and how long will it take?"
        ),
        requester=Requester(name="Mei Davis", email="mei.davis@example.com"),
        customer_id=CUSTOMER,
    )


def seed_draft(conn: psycopg.Connection, *, ticket_id: str = TICKET, text: str = DRAFT_TEXT) -> Answer:
    """The ticket and a draft answer with citations and a tool trace, stored through the answers store."""
    event = seed_ticket(conn, ticket_id=ticket_id)
    trace = [
        TraceStep(index=0, source="router", tool="find_user_id_by_email", outcome="ok", decision="allowed",
                  arguments={"email": "mei.davis@example.com"}, reason="agent may call find_user_id_by_email"),
        TraceStep(index=1, source="model", tool="get_order_details", outcome="ok", decision="allowed",
                  arguments={"order_id": ORDER}, reason="agent may call get_order_details"),
        TraceStep(index=2, source="model", tool="search_knowledge", outcome="ok", decision="allowed",
                  arguments={"query": "refund delivered order leaking"}),
        TraceStep(index=3, source="model", tool="refund", outcome="pending_approval", decision="approval_required",
                  arguments={"order_id": ORDER, "amount": 154.04},
                  reason="amount 154.04 of refund is above the approval limit 100.0"),
    ]  # fmt: skip
    return stored_draft(
        conn,
        event,
        text,
        customer_id=CUSTOMER,
        citations=CITATIONS,
        trace=trace,
        model="SmolLM2-135M-Instruct",
        prompt_version="2026-11-23.1",
        policy_version="2026-11-23.1+0a1b2c3d4e5f",
    )


def seed_pending(conn: psycopg.Connection, *, ticket_ref: str = TICKET_REF, key: str = "console-key") -> PendingAction:
    """A refund above the approval limit, proposed by the agent identity and waiting for a supervisor."""
    return approvals.propose(
        conn,
        ticket_id=ticket_ref,
        tool_name="refund",
        arguments={"order_id": ORDER, "user_id": CUSTOMER, "amount": 154.04},
        principal=agent_for_customer(CUSTOMER),
        idempotency_key=key,
        reason="amount 154.04 of refund is above the approval limit 100.0; a supervisor must approve it",
    )


def seed_documents(conn: psycopg.Connection, *, urls: dict[str, str] | None = None) -> None:
    """The two help articles the draft cites, through the knowledge store with the real embedder.

    `urls` overrides a document's link by external id (default `https://help.example.com/<external id>`).
    """
    events = [
        DocumentEvent(
            event_id=f"doc-{external_id}",
            source="kb",
            external_id=external_id,
            op="upsert",
            version=[1],
            occurred_at=utcnow(),
            title=title,
            body=body,
            url=(urls or {}).get(external_id, f"https://help.example.com/{external_id}"),
        )
        for external_id, title, body in [
            ("returns-policy", "Returns and refunds policy", "Delivered items can be returned within 30 days."),
            ("refund-timing", "When will I see my refund?", "Card refunds appear within 5-7 business days."),
        ]
    ]
    documents.apply(conn, events)


def seed_dead_letter(conn: psycopg.Connection) -> None:
    """A truncated payload dead-lettered by the ingest path."""
    stored_dead_letter(
        conn,
        offset=17,
        value_b64="eyJ0aWNrZXQiOiB7ImlkIjogNDIsICJzdWJqZWN0Ijo=",
        reason="payload is not valid JSON: Unterminated string starting at line 1 column 30",
        error_type="UnparseablePayloadError",
    )


HISTORY = [
    {"step": step, "loss": 0.69 - 0.04 * step, "rewards/margins": 0.05 * step, "kl": 0.01 * step}
    for step in range(1, 9)
]
GATE = {
    "passed": True,
    "candidate": {"adapter": "candidate", "reward_margin": 0.41, "likelihood_gap": 0.35, "perplexity": 18.2},
    "serving": {"adapter": None, "reward_margin": 0.0, "likelihood_gap": 0.12, "perplexity": 18.0},
    "reasons": [],
    "checks": [],
}


def seed_adapter(conn: psycopg.Connection, tmp_path: Path) -> AdapterVersion:
    """A registered candidate with the trainer's curves PNG and a passed eval gate, plus a finished retrain run."""
    staging = tmp_path / "staging"
    staging.mkdir()
    save_curves(HISTORY, path=staging / CURVES_FILE)
    version = registry.register_candidate(
        conn,
        staging_dir=staging,
        adapters_dir=tmp_path / "adapters",
        base_model="SmolLM2-135M-Instruct",
        parent=None,
        dataset_digest="9f2c4e1ab37d5c08e6f1",
        config={"beta": 0.1},
        metrics={"train_loss": 0.41, "examples": 64, "steps": 8},
    )
    registry.record_gate(conn, version=version.version, report=GATE)
    now = utcnow()
    conn.execute(
        "INSERT INTO retrain_runs (request_id, reason, requested_at, started_at, finished_at, status, version, "
        "details) VALUES (%s, 'count', %s, %s, %s, 'finished', %s, %s)",
        (
            "retrain-1",
            now - timedelta(minutes=9),
            now - timedelta(minutes=8),
            now - timedelta(minutes=2),
            version.version,
            Jsonb({"status": "candidate", "reason": "gate passed; kept as a candidate for review"}),
        ),
    )
    return registry.get(conn, version=version.version)
