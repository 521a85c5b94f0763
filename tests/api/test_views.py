"""What the routes do: tickets are kept for the relay, verdicts become feedback, audit exports, metrics."""

from __future__ import annotations

import json

from streamdesk import db, topics
from streamdesk.audit import service as audit
from streamdesk.config import get_settings
from streamdesk.feedback import service as feedback
from tests.api.conftest import Stack, auth, read_topic
from tests.gateway.conftest import relay_stored


def test_submitted_ticket_is_published_on_the_canonical_topic(stack: Stack) -> None:
    body = {"subject": "Refund?", "body": "Please refund order #W2.", "customer_id": "cust-9", "tags": ["refund"]}
    response = stack.client.post("/tickets", json=body, headers=auth("agent"))
    assert response.status_code == 202, response.text
    sent = response.json()
    assert sent["topic"] == topics.TICKET and sent["source"] == "api"
    assert relay_stored() == 1
    events = [e for e in read_topic(stack.bootstrap, topics.TICKET) if e["event_id"] == sent["event_id"]]
    assert len(events) == 1
    event = events[0]
    assert event["event_type"] == "created" and event["subject"] == "Refund?" and event["customer_id"] == "cust-9"
    assert event["metadata"] == {"submitted_by": "agent-op"} and event["tenant"] == "default"


def test_ticket_shows_its_answer_and_tool_trace(stack: Stack) -> None:
    shown = stack.client.get("/tickets/zendesk/T-1", headers=auth("viewer")).json()
    assert shown["body"] == "Order #W1 has not arrived."
    [answer] = shown["answers"]
    assert answer["answer_id"] == stack.ids["answer_id"]
    assert answer["trace"][0]["tool"] == "get_order_details" and answer["citations"] == ["kb:shipping#0"]
    said, replied = shown["conversation"]  # the thread, turn by turn, each agent turn with its steps
    assert (said["role"], said["text"]) == ("customer", "Order #W1 has not arrived.")
    assert (replied["role"], replied["decision"], replied["answer_id"]) == ("agent", "answered", answer["answer_id"])
    assert replied["steps"][0]["tool"] == "get_order_details" and replied["status"] == answer["status"]
    assert stack.client.get("/tickets/zendesk/nope", headers=auth("viewer")).status_code == 404
    listed = stack.client.get("/tickets", headers=auth("viewer"), params={"status": "open"}).json()
    assert [t["ticket_id"] for t in listed] == ["T-1"]


def test_edit_records_redacted_feedback_and_publishes_it(stack: Stack) -> None:
    answer_id = stack.ids["answer_id"]
    text = "Refunded to card 4111 1111 1111 1111 today."
    response = stack.client.post(
        f"/answers/{answer_id}/edit", json={"text": text, "event_id": "edit-1"}, headers=auth("agent")
    )
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "edited" and response.json()["annotator_id"] == "agent-op"
    with db.connect(stack.database_url, autocommit=True) as conn:
        stored = [s for s in feedback.signals_for(conn, answer_ids=[answer_id])[answer_id] if s.event_id == "edit-1"]
    assert stored[0].edited_text == "Refunded to card [CARD] today." and stored[0].ticket_id == "T-1"
    published = [e for e in read_topic(stack.bootstrap, "feedback") if e["event_id"] == "edit-1"]
    assert published and published[0]["edited_text"] == "Refunded to card [CARD] today."
    listed = stack.client.get("/feedback", params={"answer_id": answer_id}, headers=auth("auditor")).json()
    assert "edit-1" in [s["event_id"] for s in listed]
    retried = stack.client.post(
        f"/answers/{answer_id}/edit", json={"text": text, "event_id": "edit-1"}, headers=auth("agent")
    )
    assert retried.status_code == 202
    with db.connect(stack.database_url, autocommit=True) as conn:
        reviews = [r for r in audit.trail(conn, ticket_id="zendesk:T-1") if r.action == "answer_reviewed"]
    assert [(r.decision, r.actor_id, r.details["feedback_event_id"]) for r in reviews] == [
        ("edited", "agent-op", "edit-1")
    ]
    blank = stack.client.post(f"/answers/{answer_id}/edit", json={"text": "   "}, headers=auth("agent"))
    assert blank.status_code == 422
    missing = stack.client.post("/answers/00000000-0000-0000-0000-000000000000/accept", headers=auth("agent"))
    assert missing.status_code == 404


def test_audit_export_is_json_lines_and_the_chain_verifies(stack: Stack) -> None:
    stack.client.post(f"/approvals/{stack.ids['action_id']}/reject", headers=auth("supervisor"), json={"note": "no"})
    export = stack.client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in export.text.splitlines()]
    assert records and [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert export.headers["X-Record-Count"] == str(len(records))
    trail = stack.client.get("/audit", params={"ticket": "zendesk:T-1"}, headers=auth("auditor")).json()
    assert {r["action"] for r in trail} >= {"approval_requested", "rejection"}
    verified = stack.client.get("/audit/verify", headers=auth("auditor")).json()
    assert verified["ok"] is True and verified["checked"] == len(records)


def test_models_promote_then_roll_back(stack: Stack) -> None:
    version = stack.ids["version"]
    assert stack.client.get("/models", headers=auth("auditor")).json()[0]["status"] == "candidate"
    promoted = stack.client.post(f"/models/promote/{version}", headers=auth("admin"), json={"reason": "looks good"})
    assert promoted.status_code == 200 and promoted.json()["action"] == "promoted"
    assert stack.client.post(f"/models/promote/{version}", headers=auth("admin")).status_code == 409
    assert stack.client.post("/models/promote/v-missing", headers=auth("admin")).status_code == 404
    rolled = stack.client.post("/models/rollback", headers=auth("supervisor"))
    assert rolled.status_code == 200 and rolled.json()["previous"] == version
    retrain = stack.client.post("/models/retrain", headers=auth("supervisor"))
    assert retrain.status_code == 202 and retrain.json()["requested_by"] == "supervisor-op"
    runs = stack.client.get("/models/retrains", headers=auth("supervisor")).json()
    assert runs[0]["request_id"] == retrain.json()["request_id"] and runs[0]["status"] == "requested"


def test_ingest_health_shows_lag_and_dead_letter_reasons(stack: Stack) -> None:
    lag = stack.client.get("/ingest/lag", headers=auth("viewer")).json()
    assert lag["group"] == "streamdesk-ingest" and topics.TICKET in lag["lag"]
    [letter] = stack.client.get("/ingest/dead-letters", headers=auth("auditor")).json()
    assert letter["reason"] == "payload is not JSON" and letter["value_preview"] == "not json"


def test_metrics_count_requests_per_route_and_report_domain_gauges(stack: Stack) -> None:
    stack.client.get("/tickets", headers=auth("viewer"))
    stack.client.get("/no/such/path")
    text = stack.client.get("/metrics").text
    assert 'streamdesk_http_requests_total{method="GET",route="/tickets",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "streamdesk_http_request_duration_seconds_bucket" in text
    assert "streamdesk_database_up 1.0" in text and "streamdesk_dead_letters 1.0" in text


def test_bad_values_are_422_not_500(stack: Stack) -> None:
    nul = stack.client.get("/tickets/zen%00desk/T-1", headers=auth("viewer"))
    assert nul.status_code == 422, nul.text
    assert stack.client.get("/audit", params={"ticket": "a\x00b"}, headers=auth("auditor")).status_code == 422


def test_readyz_reports_the_broker_and_database(stack: Stack) -> None:
    ready = stack.client.get("/readyz").json()
    assert ready == {"status": "ready", "checks": {"broker": "ok", "database": "ok"}}


def test_a_ticket_text_over_the_ticket_limit_is_refused_with_the_setting_named(stack: Stack) -> None:
    limit = get_settings().ingest.ticket_text_max_chars
    long = {"subject": "Long", "body": "x" * (limit + 1)}
    refused = stack.client.post("/tickets", json=long, headers=auth("agent"))
    assert refused.status_code == 422 and "STREAMDESK_INGEST__TICKET_TEXT_MAX_CHARS" in refused.text
    fits = stack.client.post("/tickets", json={**long, "body": "x" * limit}, headers=auth("agent"))
    assert fits.status_code == 202, fits.text
