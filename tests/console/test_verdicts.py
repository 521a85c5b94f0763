"""One rule for verdicts through the API, the console and the `feedback` topic: one verdict per answer, and an
edit must change the draft. Driven through the real app (`create_app`), the real broker and the learn worker's
store step."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from streamdesk.api.app import create_app
from streamdesk.config import get_settings, reset_settings
from streamdesk.contracts import utcnow
from streamdesk.feedback import service as feedback
from streamdesk.feedback.models import FeedbackEvent
from streamdesk.kafka import Publisher
from streamdesk.streams.messages import RawMessage
from streamdesk.training.config import get_training_settings
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.worker import LearnLoop
from tests.console.conftest import DRAFT_TEXT, seed_draft
from tests.console.test_views import sign_in

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ANA = {"Authorization": "Bearer ana-token-0123456789"}
SAME_AS_DRAFT = "  " + DRAFT_TEXT.upper() + "\n"
"""The draft with only whitespace and case changed: not an edit."""


@pytest.fixture
def client(conn: psycopg.Connection, topics_ready: str, operators: dict[str, object]) -> Iterator[TestClient]:
    reset_settings()
    with TestClient(create_app(get_settings()), follow_redirects=False) as test_client:
        yield test_client


def through_topic(conn: psycopg.Connection, bootstrap: str, event: FeedbackEvent) -> list[str]:
    """Publish `event` on `feedback`, hand the message to the learn worker's store step; the dead letters' reasons."""
    with Publisher(bootstrap) as publisher:
        publisher.publish(feedback.FEEDBACK_TOPIC, event.to_json(), key=event.answer_id)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-verdicts-{uuid.uuid4()}"})
    messages = []
    try:
        for partition in consumer.list_topics(feedback.FEEDBACK_TOPIC, timeout=10).topics["feedback"].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition("feedback", partition), timeout=10)
            consumer.assign([TopicPartition("feedback", partition, low)])
            while low < high:
                message = consumer.poll(5.0)
                assert message is not None and message.error() is None
                low = message.offset() + 1
                if message.value() and b'"' + event.event_id.encode() + b'"' in message.value():
                    messages.append(message)
    finally:
        consumer.close()
    message = messages[-1]
    raw = RawMessage(
        topic=message.topic(),
        value=message.value(),
        key=message.key(),
        headers={},
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=None,
    )
    settings = get_settings()
    loop = LearnLoop(settings=settings, training=get_training_settings(), config=KTOTrainingConfig.from_env())
    loop.store([raw])
    loop.publisher.close()
    rows = conn.execute(
        "SELECT reason FROM dead_letters WHERE topic = 'feedback' AND \"offset\" = %s", (message.offset(),)
    ).fetchall()
    return [row[0] for row in rows]


def topic_event(answer_id: str, kind: str, *, edited_text: str | None = None) -> FeedbackEvent:
    return FeedbackEvent(
        event_id=f"topic-{uuid.uuid4()}",
        answer_id=answer_id,
        ticket_id="T-1001",
        kind=kind,  # type: ignore[arg-type]
        edited_text=edited_text,
        annotator_id="crm",
        occurred_at=utcnow(),
    )


def verdicts(conn: psycopg.Connection, answer_id: str) -> list[str]:
    signals = feedback.signals_for(conn, answer_ids=[answer_id])[answer_id]
    return [s.kind for s in signals if s.kind in feedback.VERDICTS]


def test_a_second_verdict_is_refused_everywhere(
    client: TestClient, conn: psycopg.Connection, topics_ready: str
) -> None:
    answer_id = seed_draft(conn).answer_id
    accepted = client.post(f"/answers/{answer_id}/accept", json={"event_id": "v-1"}, headers=ANA)
    assert accepted.status_code == 202, accepted.text
    retried = client.post(f"/answers/{answer_id}/accept", json={"event_id": "v-1"}, headers=ANA)
    assert retried.status_code == 202, "a retry of the same verdict is not a second verdict"

    again = client.post(f"/answers/{answer_id}/reject", headers=ANA)
    assert again.status_code == 409 and "already accepted by ana" in again.json()["detail"]
    body = {"answer_id": answer_id, "ticket_id": "T-1001", "kind": "rejected"}
    assert client.post("/feedback", json=body, headers=ANA).status_code == 409

    csrf = sign_in(client, "ana")
    client.post(f"/console/review/{answer_id}", data={"verdict": "reject", "csrf_token": csrf})
    assert "already accepted by ana" in client.get("/console/review").text

    [reason] = through_topic(conn, topics_ready, topic_event(answer_id, "rejected"))
    assert "already accepted by ana" in reason
    assert through_topic(conn, topics_ready, feedback.signals_for(conn, answer_ids=[answer_id])[answer_id][0]) == []
    assert verdicts(conn, answer_id) == ["accepted"]


def test_an_edit_must_change_the_draft_everywhere(
    client: TestClient, conn: psycopg.Connection, topics_ready: str
) -> None:
    answer_id = seed_draft(conn).answer_id
    api = client.post(f"/answers/{answer_id}/edit", json={"text": SAME_AS_DRAFT}, headers=ANA)
    assert api.status_code == 422 and "same as the draft" in api.json()["detail"]
    body = {"answer_id": answer_id, "ticket_id": "T-1001", "kind": "edited", "edited_text": SAME_AS_DRAFT}
    assert client.post("/feedback", json=body, headers=ANA).status_code == 422

    csrf = sign_in(client, "ana")
    form = {"verdict": "edit", "edited_text": SAME_AS_DRAFT, "csrf_token": csrf}
    client.post(f"/console/review/{answer_id}", data=form)
    assert "same as the draft" in client.get("/console/review").text

    [reason] = through_topic(conn, topics_ready, topic_event(answer_id, "edited", edited_text=SAME_AS_DRAFT))
    assert "same as the draft" in reason
    assert verdicts(conn, answer_id) == []
