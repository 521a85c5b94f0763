"""`schemas/feedback.v1.json` and `FeedbackEvent` stay in step, and both refuse signals that contradict their kind."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from streamdesk import contracts, topics
from streamdesk.config import get_settings
from streamdesk.exceptions import ContractError
from streamdesk.feedback.models import FeedbackEvent
from tests.feedback.factories import signal

SCHEMA = "feedback.v1.json"


def test_record_fields_and_schema_properties_are_the_same() -> None:
    schema = json.loads((get_settings().schemas_dir / SCHEMA).read_text())
    assert set(FeedbackEvent.model_fields) == set(schema["properties"])
    assert {n for n, f in FeedbackEvent.model_fields.items() if f.is_required()} <= set(schema["required"])
    kinds = FeedbackEvent.model_fields["kind"].annotation.__args__  # type: ignore[union-attr]
    assert set(schema["properties"]["kind"]["enum"]) == set(kinds)
    assert topics.spec("feedback").schema == SCHEMA


@pytest.mark.parametrize(
    "event",
    [
        signal("A-1", "thumbs_up"),
        signal("A-1", "csat", rating=2),
        signal("A-1", "edited", edited_text="Better reply."),
        signal("A-1", "reopened", annotator=None),
    ],
    ids=lambda e: e.kind,
)
def test_signals_the_code_builds_validate(event: FeedbackEvent) -> None:
    contracts.validate(SCHEMA, event.to_json())


@pytest.mark.parametrize(
    ("change", "word"),
    [({"kind": "csat", "rating": None}, "rating"), ({"kind": "edited", "edited_text": None}, "edited")],
)
def test_contradictions_are_refused_by_schema_and_code(change: dict[str, object], word: str) -> None:
    payload = signal("A-1", "thumbs_up").to_json() | change
    with pytest.raises(ContractError):
        contracts.validate(SCHEMA, payload)
    with pytest.raises(ValidationError, match=word):
        FeedbackEvent.model_validate(payload)
    rated = signal("A-1", "thumbs_up").to_json() | {"rating": 5}
    with pytest.raises(ContractError):
        contracts.validate(SCHEMA, rated)
