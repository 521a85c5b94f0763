"""The label policy, case by case: each row is the signals on one answer and the examples they must yield."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from streamdesk.feedback import labels
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.feedback.models import AnswerContext, FeedbackEvent
from tests.feedback.factories import T0, signal

DRAFT = "You can track your order from the Orders page; it ships within two days."
EDIT = "Your order #W2890441 shipped today; the tracking link is in your confirmation email."
SETTINGS = FeedbackSettings(reopen_window_days=7, csat_undesirable_max=2, csat_desirable_min=4)


def draft_answer() -> AnswerContext:
    return AnswerContext(
        answer_id="A-1",
        ticket_id="T-1",
        prompt="Where is my order?",
        completion=DRAFT,
        answered_at=T0,
        adapter_version="kto-3",
        customer_id="cust-1",
    )


@dataclass(frozen=True)
class Case:
    name: str
    signals: list[FeedbackEvent]
    expected: dict[str, bool]
    decided_by: dict[str, str] = field(default_factory=dict)


def s(kind: str, hours: float = 1.0, **kwargs: object) -> FeedbackEvent:
    return signal("A-1", kind, hours=hours, **kwargs)  # type: ignore[arg-type]


CASES = [
    Case("no signals", [], {}),
    Case("accepted", [s("accepted")], {"draft": True}, {"draft": "accepted"}),
    Case("edited", [s("edited", edited_text=EDIT)], {"draft": False, "edit": True}, {"edit": "edited"}),
    Case("rejected", [s("rejected")], {"draft": False}, {"draft": "rejected"}),
    Case("reopened within the window", [s("reopened", hours=48)], {"draft": False}, {"draft": "reopened"}),
    Case("reopened after the window", [s("reopened", hours=24 * 10)], {}),
    Case("reopened before the answer is ignored", [s("reopened", hours=-1)], {}),
    Case("csat 1", [s("csat", rating=1)], {"draft": False}),
    Case("csat 2", [s("csat", rating=2)], {"draft": False}),
    Case("csat 3 is neutral", [s("csat", rating=3)], {}),
    Case("csat 4", [s("csat", rating=4)], {"draft": True}),
    Case("csat 5", [s("csat", rating=5)], {"draft": True}),
    Case("thumbs up", [s("thumbs_up")], {"draft": True}),
    Case("thumbs down", [s("thumbs_down")], {"draft": False}),
    Case(
        "late reopen overrides an acceptance",
        [s("accepted", 1), s("reopened", 30)],
        {"draft": False},
        {"draft": "reopened"},
    ),
    Case("verdict beats a thumb", [s("thumbs_up", 5), s("rejected", 1)], {"draft": False}, {"draft": "rejected"}),
    Case(
        "outcomes do not rescue a rejected draft",
        [s("rejected", 1), s("csat", 20, rating=5)],
        {"draft": False},
        {"draft": "rejected"},
    ),
    Case(
        "csat of an edited answer labels the edit, not the draft",
        [s("edited", 1, edited_text=EDIT), s("csat", 20, rating=1)],
        {"draft": False, "edit": False},
        {"draft": "edited", "edit": "csat"},
    ),
    Case(
        "reopen after an edit makes the edit undesirable",
        [s("edited", 1, edited_text=EDIT), s("reopened", 30)],
        {"draft": False, "edit": False},
    ),
    Case("latest thumb wins", [s("thumbs_down", 1), s("thumbs_up", 2)], {"draft": True}, {"draft": "thumbs_up"}),
    Case("latest outcome wins", [s("reopened", 2), s("csat", 40, rating=5)], {"draft": True}, {"draft": "csat"}),
    Case("latest verdict wins", [s("accepted", 1), s("rejected", 2)], {"draft": False}, {"draft": "rejected"}),
    Case(
        "an edit identical to the draft is an acceptance",
        [s("edited", edited_text="  " + DRAFT.upper() + " ")],
        {"draft": True},
        {"draft": "edited"},
    ),
    Case("neutral csat leaves the thumb to decide", [s("csat", 3, rating=3), s("thumbs_down", 1)], {"draft": False}),
    Case("signals on other answers are ignored", [signal("A-2", "thumbs_down")], {}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_label_policy(case: Case) -> None:
    examples = labels.label_answer(answer=draft_answer(), signals=case.signals, settings=SETTINGS)
    assert {e.source: e.label for e in examples} == case.expected
    for source, kind in case.decided_by.items():
        decided = next(e for e in examples if e.source == source).decided_by
        assert decided.split(":", 1)[0] == kind


def test_every_example_keeps_its_lineage() -> None:
    signals = [s("thumbs_up", 1, annotator="op-7"), s("edited", 2, edited_text=EDIT, annotator="op-9")]
    draft, edit = labels.label_answer(answer=draft_answer(), signals=signals, settings=SETTINGS)
    for example in (draft, edit):
        assert (example.answer_id, example.ticket_id, example.adapter_version) == ("A-1", "T-1", "kto-3")
        assert example.policy_version == labels.POLICY_VERSION
        assert example.customer_id == "cust-1"
        assert example.annotator_id == "op-9"
    assert draft.completion == DRAFT and edit.completion == EDIT
    assert set(draft.signal_ids) == {signals[0].event_id, signals[1].event_id}
    assert draft.decided_by == f"edited:{signals[1].event_id}"


def test_the_window_and_thresholds_come_from_the_settings() -> None:
    late = [s("reopened", hours=24 * 10)]
    wide = FeedbackSettings(reopen_window_days=14)
    assert labels.label_answer(answer=draft_answer(), signals=late, settings=wide)[0].label is False
    strict = FeedbackSettings(csat_desirable_min=5)
    assert labels.label_answer(answer=draft_answer(), signals=[s("csat", rating=4)], settings=strict) == []


def test_a_redelivered_signal_counts_once() -> None:
    twice = [s("thumbs_down", 1, event_id="e1"), s("thumbs_down", 1, event_id="e1")]
    (example,) = labels.label_answer(answer=draft_answer(), signals=twice, settings=SETTINGS)
    assert example.signal_ids == ("e1",)
