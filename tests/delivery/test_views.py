"""A draft accepted in the console goes out on the `reply` topic, queued for delivery; its status shows in the API
(`/deliveries`) and on the console's review page. Through the real app, broker and database."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import psycopg
import pytest

from streamdesk.api.app import create_app
from streamdesk.config import get_settings, reset_settings
from streamdesk.delivery.models import REPLY_TOPIC
from tests.console.conftest import DRAFT_TEXT, operators, seed_draft  # noqa: F401 - `operators` is a fixture
from tests.console.test_views import sign_in
from tests.topics import read_json

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ANA = {"Authorization": "Bearer ana-token-0123456789"}


@pytest.fixture
def client(conn: psycopg.Connection, topics_ready: str, operators: dict[str, object]) -> Iterator[TestClient]:  # noqa: F811
    reset_settings()
    with TestClient(create_app(get_settings()), follow_redirects=False) as test_client:
        yield test_client


def test_an_accepted_draft_is_queued_published_and_shown(
    client: TestClient, conn: psycopg.Connection, topics_ready: str
) -> None:
    answer = seed_draft(conn)
    csrf = sign_in(client, "ana")
    decided = client.post(f"/console/review/{answer.answer_id}", data={"verdict": "accept", "csrf_token": csrf})
    assert decided.status_code == 303

    (reply,) = read_json(topics_ready, REPLY_TOPIC, group="t-delivery-views")
    assert reply["reply_id"] == answer.answer_id and reply["kind"] == "accepted" and reply["text"] == DRAFT_TEXT

    listed = client.get("/deliveries", params={"answer_id": answer.answer_id}, headers=ANA)
    assert listed.status_code == 200, listed.text
    (row,) = listed.json()
    assert row["status"] == "queued" and row["kind"] == "accepted" and row["ticket_id"] == answer.ticket_id
    one = client.get(f"/deliveries/{answer.answer_id}", headers=ANA)
    assert one.status_code == 200 and one.json()["reply_id"] == answer.answer_id
    assert client.get("/deliveries/nope", headers=ANA).status_code == 404
    assert client.get("/deliveries").status_code == 401

    page = client.get("/console/review").text
    assert f'data-reply-id="{answer.answer_id}"' in page and "status-queued" in page


def test_a_rejected_draft_is_not_delivered(client: TestClient, conn: psycopg.Connection) -> None:
    answer = seed_draft(conn)
    assert client.post(f"/answers/{answer.answer_id}/reject", headers=ANA).status_code == 202
    assert client.get("/deliveries", params={"answer_id": answer.answer_id}, headers=ANA).json() == []
