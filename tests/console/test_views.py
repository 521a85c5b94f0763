"""The console's pages over TestClient: sign-in, the policy's roles per page and button, CSRF, reviews."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI

from streamdesk.agent import conversations
from streamdesk.api.app import use_policy
from streamdesk.audit import service as audit
from streamdesk.config import get_settings, reset_settings
from streamdesk.console import views as console_views
from streamdesk.console.config import get_console_settings
from streamdesk.feedback import service as feedback
from streamdesk.policy import approvals
from streamdesk.training import registry
from streamdesk.web import deps
from tests.console.conftest import (
    DRAFT_TEXT,
    OPERATORS,
    TICKET_REF,
    csrf_of,
    seed_adapter,
    seed_dead_letter,
    seed_draft,
    seed_pending,
    seed_ticket,
)
from tests.factories import stored_draft
from tests.feedback.test_hygiene import example

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def client(conn: psycopg.Connection, operators: dict[str, dict[str, object]]) -> Iterator[TestClient]:
    reset_settings()
    app = FastAPI(lifespan=deps.publisher_lifespan)
    app.state.settings = get_settings()
    use_policy(app)
    app.include_router(console_views.router, prefix="/console")
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def sign_in(client: TestClient, operator: str) -> str:
    """Sign `operator` in through the form; the CSRF token of the new session (from the page it lands on)."""
    login = client.get("/console/login")
    response = client.post(
        "/console/login", data={"token": OPERATORS[operator]["token"], "csrf_token": csrf_of(login.text)}
    )
    assert response.status_code == 303, response.text
    landing = client.get(response.headers["location"], follow_redirects=True)
    assert f"Signed in as {operator}" in landing.text and OPERATORS[operator]["token"] not in landing.text
    return csrf_of(landing.text)


def test_sign_in_out_and_bad_tokens(client: TestClient, conn: psycopg.Connection) -> None:
    home = client.get("/console/")
    assert home.status_code == 303 and home.headers["location"] == "/console/login"
    assert client.get("/console/review").headers["location"] == "/console/login?next=/console/review"
    login = client.get("/console/login")
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/console" in cookie and "SameSite=lax" in cookie
    wrong = client.post("/console/login", data={"token": "nope", "csrf_token": csrf_of(login.text)})
    assert wrong.status_code == 401 and "matches no operator" in wrong.text

    csrf = sign_in(client, "ana")
    assert client.get("/console/").headers["location"] == "/console/review"
    page = client.get("/console/review")
    assert page.status_code == 200 and 'data-page="review"' in page.text
    out = client.post("/console/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert client.get("/console/review").status_code == 303
    assert client.get("/console/static/console.css").status_code == 200


def test_a_tampered_cookie_or_a_rotated_token_ends_the_sign_in(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, "ana")
    name = get_console_settings().cookie_name
    stored = next(cookie for cookie in client.cookies.jar if cookie.name == name)
    assert stored.value is not None
    tampered = stored.value[:-2] + ("AA" if not stored.value.endswith("AA") else "BB")
    client.cookies.set(name, tampered, domain=stored.domain, path=stored.path)
    assert client.get("/console/review").status_code == 303
    sign_in(client, "ana")
    assert client.get("/console/review").status_code == 200
    rotated = {**OPERATORS, "ana": {"roles": ["agent"], "token": "ana-new-token-987654321"}}
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(rotated))
    reset_settings()
    assert client.get("/console/review").status_code == 303


@pytest.mark.parametrize(
    ("operator", "allowed", "denied"),
    [
        ("ana", ["review", "ingest"], ["approvals", "audit", "models"]),
        ("sam", ["review", "approvals", "audit", "models", "ingest"], []),
        ("ada", ["approvals", "audit", "models", "ingest"], ["review"]),
        ("vic", ["ingest"], ["review", "approvals", "audit", "models"]),
    ],
)
def test_each_role_sees_the_pages_the_policy_grants(
    client: TestClient, operator: str, allowed: list[str], denied: list[str]
) -> None:
    sign_in(client, operator)
    for page in allowed:
        response = client.get(f"/console/{page}")
        assert response.status_code == 200, (operator, page, response.text[:300])
        assert f'data-page="{page}"' in response.text
    for page in denied:
        response = client.get(f"/console/{page}")
        assert response.status_code == 403, (operator, page)
        assert "Access denied" in response.text and "may not call" in response.text
        assert f'data-page="{page}"' not in response.text


def test_reviews_need_the_csrf_token_and_a_reviewer(client: TestClient, conn: psycopg.Connection) -> None:
    draft = seed_draft(conn)
    csrf = sign_in(client, "ana")
    url = f"/console/review/{draft.answer_id}"
    assert client.post(url, data={"verdict": "accept"}).status_code == 403
    refused = client.post(url, data={"verdict": "accept", "csrf_token": "forged"})
    assert refused.status_code == 403 and "Form expired" in refused.text
    assert feedback.signals_for(conn, answer_ids=[draft.answer_id])[draft.answer_id] == []

    client.post("/console/logout", data={"csrf_token": csrf})
    auditor_csrf = sign_in(client, "ada")
    assert client.post(url, data={"verdict": "accept", "csrf_token": auditor_csrf}).status_code == 403
    assert feedback.signals_for(conn, answer_ids=[draft.answer_id])[draft.answer_id] == []


def test_edit_accept_records_feedback_and_audit(client: TestClient, conn: psycopg.Connection) -> None:
    draft = seed_draft(conn)
    csrf = sign_in(client, "ana")
    page = client.get("/console/review")
    assert draft.answer_id in page.text and "Refund for my delivered order" in page.text
    assert "kb:returns-policy" in page.text and "search_knowledge" in page.text
    url = f"/console/review/{draft.answer_id}"

    same = client.post(url, data={"verdict": "edit", "edited_text": DRAFT_TEXT, "csrf_token": csrf})
    assert same.status_code == 303
    assert "same as the draft" in client.get("/console/review").text
    edited = DRAFT_TEXT.replace("5-7 business days", "3-5 business days")
    done = client.post(url, data={"verdict": "edit", "edited_text": edited, "csrf_token": csrf})
    assert done.status_code == 303
    after = client.get("/console/review").text
    assert "edited; feedback recorded" in after and f'data-answer-id="{draft.answer_id}"' not in after

    signals = feedback.signals_for(conn, answer_ids=[draft.answer_id])[draft.answer_id]
    assert [(s.kind, s.annotator_id, s.edited_text) for s in signals] == [("edited", "ana", edited)]
    last = audit.trail(conn, ticket_id=TICKET_REF)[-1]
    assert (last.action, last.decision, last.actor_id) == ("answer_reviewed", "edited", "ana")
    assert last.details["answer_id"] == draft.answer_id
    assert audit.verify(conn).ok

    again = client.post(url, data={"verdict": "reject", "csrf_token": csrf})
    assert again.status_code == 303 and "already edited by ana" in client.get("/console/review").text
    assert client.post("/console/review/not-a-uuid", data={"verdict": "accept", "csrf_token": csrf}).status_code == 303
    assert "not an answer id" in client.get("/console/review").text


def test_approvals_are_decided_by_supervisors_only(client: TestClient, conn: psycopg.Connection) -> None:
    action = seed_pending(conn)
    auditor_csrf = sign_in(client, "ada")
    page = client.get("/console/approvals")
    assert page.status_code == 200 and action.id in page.text and 'data-action="approve"' not in page.text
    forbidden = client.post(f"/console/approvals/{action.id}/approve", data={"csrf_token": auditor_csrf})
    assert forbidden.status_code == 403
    assert approvals.get_action(conn, action_id=action.id).status == "pending"

    client.post("/console/logout", data={"csrf_token": auditor_csrf})
    csrf = sign_in(client, "sam")
    assert 'data-action="approve"' in client.get("/console/approvals").text
    assert client.post(f"/console/approvals/{action.id}/approve", data={"csrf_token": "x"}).status_code == 403
    done = client.post(f"/console/approvals/{action.id}/approve", data={"csrf_token": csrf, "note": "confirmed"})
    assert done.status_code == 303
    decided = approvals.get_action(conn, action_id=action.id)
    assert (decided.status, decided.decided_by, decided.decision_note) == ("approved", "sam", "confirmed")
    twice = client.post(f"/console/approvals/{action.id}/reject", data={"csrf_token": csrf})
    assert twice.status_code == 303 and "already approved" in client.get("/console/approvals").text


def test_audit_models_and_ingest_pages(client: TestClient, conn: psycopg.Connection, tmp_path: Path) -> None:
    seed_draft(conn)
    seed_pending(conn)
    seed_dead_letter(conn)
    adapter = seed_adapter(conn, tmp_path)
    sign_in(client, "ada")
    page = client.get("/console/audit", params={"ticket": TICKET_REF})
    assert page.status_code == 200 and "Verified" in page.text and "approval_requested" in page.text
    assert 'id="ticket-trail"' in page.text

    models = client.get("/console/models")
    assert models.status_code == 200 and adapter.version in models.text and "gate passed" in models.text
    for plot in ("curves", "evaluation"):
        image = client.get(f"/console/models/{adapter.version}/{plot}.png")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content.startswith(b"\x89PNG")
    assert client.get("/console/models/nope/curves.png").status_code == 404

    ingest = client.get("/console/ingest")
    assert ingest.status_code == 200 and "UnparseablePayloadError" in ingest.text
    assert "Unterminated string" in ingest.text and "no broker configured" in ingest.text


def test_the_models_page_shows_each_adapters_lineage(
    client: TestClient, conn: psycopg.Connection, tmp_path: Path
) -> None:
    adapter = seed_adapter(conn, tmp_path)
    examples = [replace(example(n, label=n != 2), signal_ids=(f"sig-{n}",)) for n in range(3)]
    feedback.upsert_examples(conn, examples=examples)
    feedback.mark_trained(conn, digests=[e.content_digest for e in examples], version=adapter.version)
    written = stored_draft(
        conn, seed_ticket(conn, ticket_id="T-2002"), "Your refund is on its way.", adapter=adapter.version
    )
    registry.promote(conn, version=adapter.version, actor="sam", reason="gate passed")
    registry.rollback(conn, base_model=adapter.base_model, actor="sam", reason="acceptance fell")
    sign_in(client, "ada")

    page = client.get("/console/models").text

    assert "retrain retrain-1" in page
    assert "3 examples (2 desirable, 1 undesirable) from 3 signals" in page and "sig-0, sig-1, sig-2" in page
    assert "answers written</th><td>1:" in page and f"zendesk:T-2002 ({written.answer_id[:8]})" in page
    assert f"promoted {adapter.version}" in page and "gate passed" in page
    assert f"rolled back base model (was {adapter.version}) by sam: acceptance fell" in page


def test_the_review_card_shows_the_conversation_so_far(client: TestClient, conn: psycopg.Connection) -> None:
    draft = seed_draft(conn)
    thread = {"source": draft.source, "ticket_id": draft.ticket_id}
    earlier = "If the order has not shipped, please cancel it."
    conversations.record_customer_message(conn, **thread, tenant="default", event_id="earlier-1", text=earlier)
    held = conversations.TurnOutcome(
        customer_id=None, identified_by=None, open_request=earlier, held_actions=[], facts=[], pending_action_ids=[],
        decision="held",
    )  # fmt: skip
    conversations.record_agent_turn(
        conn, **thread, event_id="earlier-1", answer_id=str(uuid.uuid4()), text="Reply yes to confirm.", outcome=held
    )
    conversations.record_customer_message(
        conn, **thread, tenant="default", event_id=draft.event_id, text="The latest message."
    )
    sign_in(client, "ana")
    page = client.get("/console/review").text
    assert "Conversation so far" in page and earlier in page and "Reply yes to confirm." in page
    assert page.index(earlier) < page.index("Reply yes to confirm.") < page.index("Latest message")


def test_a_later_answer_supersedes_an_earlier_draft_in_the_review_queue(conn: psycopg.Connection) -> None:
    from streamdesk.console import service as console_service
    from tests.factories import stored_draft

    first = seed_draft(conn)
    ticket = seed_ticket(conn).model_copy(update={"event_id": f"{first.event_id}:comment"})
    later = stored_draft(conn, ticket, "Your cancellation now waits for a supervisor's approval.")
    queue = [d.answer.answer_id for d in console_service.review_queue(conn, tenant=later.tenant)]
    assert later.answer_id in queue and first.answer_id not in queue  # the customer's next message moved on
