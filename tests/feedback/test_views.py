"""POST /feedback stores the signal (redacted) and publishes it on the `feedback` topic."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Consumer
from fastapi import FastAPI

from streamdesk.api.app import create_app, use_policy
from streamdesk.config import get_settings, reset_settings
from streamdesk.feedback import service
from streamdesk.feedback import views as feedback_views
from streamdesk.web import deps

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OPERATORS = {"sam": {"roles": ["agent"], "token": "sam-token-0123456789"}}
AUTH = {"Authorization": "Bearer sam-token-0123456789"}


@pytest.fixture
def client(conn: psycopg.Connection, topics_ready: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(OPERATORS))
    reset_settings()
    app = FastAPI(lifespan=deps.publisher_lifespan)
    app.state.settings = get_settings()
    use_policy(app)
    app.include_router(feedback_views.router, prefix="/feedback")
    with TestClient(app) as test_client:
        assert app.state.publisher is not None
        yield test_client
    assert app.state.publisher is None


def consume_one(bootstrap: str, topic: str) -> dict[str, object]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "t-feedback",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                return dict(json.loads(message.value()))
    finally:
        consumer.close()
    raise AssertionError(f"nothing on {topic}")


def test_an_operator_posts_an_edit(client: TestClient, conn: psycopg.Connection, topics_ready: str) -> None:
    body = {
        "answer_id": "A-1",
        "ticket_id": "T-1",
        "kind": "edited",
        "edited_text": "Refund sent to card 4111 1111 1111 1111.",
        "event_id": "fb-1",
    }
    response = client.post("/feedback", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json()["annotator_id"] == "sam"
    assert client.post("/feedback", json=body, headers=AUTH).status_code == 202
    stored = service.signals_for(conn, answer_ids=["A-1"])["A-1"]
    assert len(stored) == 1 and stored[0].edited_text == "Refund sent to card [CARD]."
    published = consume_one(topics_ready, "feedback")
    assert published["event_id"] == "fb-1" and published["edited_text"] == "Refund sent to card [CARD]."


def test_bad_signals_and_strangers_are_refused(client: TestClient) -> None:
    csat = {"answer_id": "A-1", "ticket_id": "T-1", "kind": "csat"}
    assert client.post("/feedback", json=csat, headers=AUTH).status_code == 422
    assert client.post("/feedback", json=csat | {"rating": 4}).status_code == 401


def test_the_api_has_one_publisher_closed_at_shutdown(
    conn: psycopg.Connection, topics_ready: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app makes its one publisher at startup, every route gets it, and shutdown closes it (no leaked producer)."""
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(OPERATORS))
    reset_settings()
    app = create_app(get_settings())
    with TestClient(app) as client:
        made = app.state.publisher
        body = {"answer_id": "A-9", "ticket_id": "T-9", "kind": "thumbs_up", "event_id": "fb-9"}
        assert client.post("/feedback", json=body, headers=AUTH).status_code == 202
        assert made.delivered == 1 and not made.closed
    assert made.closed and app.state.publisher is None
