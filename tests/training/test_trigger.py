"""The retrain trigger: when a retrain is due, and the request it puts on the `retrain` topic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.feedback.models import ClassBalance
from streamdesk.kafka import Publisher
from streamdesk.training import trigger
from streamdesk.training.config import TrainingSettings
from tests.feedback.factories import answer, lookup_of, signal
from tests.topics import read_json

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = TrainingSettings(min_new_examples=10, min_minority_fraction=0.2, schedule_hours=24, min_scheduled_examples=2)


def balance(desirable: int, undesirable: int) -> ClassBalance:
    return ClassBalance(desirable=desirable, undesirable=undesirable, by_source={}, top_customers={}, top_annotators={})


@dataclass(frozen=True)
class Case:
    name: str
    desirable: int
    undesirable: int
    last_hours_ago: float | None
    expected: str | None


CASES = [
    Case("nothing new", 0, 0, None, None),
    Case("enough and balanced", 6, 4, 1, "count"),
    Case("enough but one-sided waits", 9, 1, 1, None),
    Case("one-sided, schedule due", 9, 1, 30, "schedule"),
    Case("few, schedule due", 1, 1, 25, "schedule"),
    Case("few, schedule not due", 1, 1, 5, None),
    Case("too few even for the schedule", 1, 0, 48, None),
    Case("never trained: the schedule is due", 2, 0, None, "schedule"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_retrain_due(case: Case) -> None:
    last = None if case.last_hours_ago is None else NOW - timedelta(hours=case.last_hours_ago)
    due = trigger.retrain_due(
        pending=balance(case.desirable, case.undesirable), last_retrain_at=last, now=NOW, settings=SETTINGS
    )
    assert due == case.expected


def test_schedule_off() -> None:
    off = SETTINGS.model_copy(update={"schedule_hours": 0})
    assert trigger.retrain_due(pending=balance(3, 3), last_retrain_at=None, now=NOW, settings=off) is None


def test_a_due_retrain_is_requested_once_on_the_topic(
    conn: psycopg.Connection, topics_ready: str, rows: list[dict[str, str]]
) -> None:
    answers = [answer(n, rows[n * 17]) for n in range(12)]
    feedback.store_feedback(
        conn, events=[signal(a.answer_id, "accepted" if n % 2 else "rejected") for n, a in enumerate(answers)]
    )
    feedback.relabel(
        conn,
        answer_ids=[a.answer_id for a in answers],
        lookup=lookup_of(answers),
        settings=FeedbackSettings(heldout_percent=0),
    )
    with Publisher(topics_ready) as publisher:
        request = trigger.check_and_request(conn, publisher=publisher, settings=SETTINGS, now=NOW)
        assert request is not None and request.reason == "count" and request.pending_examples == 12
        assert trigger.check_and_request(conn, publisher=publisher, settings=SETTINGS, now=NOW) is None
    seen = read_json(topics_ready, trigger.RETRAIN_TOPIC, group="t-retrain")
    assert [m["request_id"] for m in seen] == [request.request_id]
    assert seen[0]["desirable"] == 6 and seen[0]["undesirable"] == 6
