"""`schemas/model.v1.json` and `schemas/retrain.v1.json` stay in step with the records the code publishes."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from streamdesk import contracts, topics
from streamdesk.config import get_settings
from streamdesk.training.models import ModelEvent, RetrainRequest
from tests.training.test_trigger import NOW

RECORDS: dict[str, type[BaseModel]] = {"model.v1.json": ModelEvent, "retrain.v1.json": RetrainRequest}
SAMPLES = [
    ModelEvent(
        event_id="e1",
        action="promoted",
        version="kto-2",
        previous="kto-1",
        base_model="smollm2-135m-instruct",
        dataset_digest="a" * 64,
        metrics={"examples": 12},
        actor="retrain-gate",
        occurred_at=NOW,
    ),
    ModelEvent(
        event_id="e2",
        action="rolled_back",
        version=None,
        previous="kto-1",
        base_model="m",
        actor="sam",
        occurred_at=NOW,
    ),
    RetrainRequest(
        request_id="r1",
        reason="count",
        pending_examples=12,
        desirable=6,
        undesirable=6,
        requested_by="trigger",
        requested_at=NOW,
    ),
]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_record_fields_and_schema_properties_are_the_same(name: str) -> None:
    schema = json.loads((get_settings().schemas_dir / name).read_text())
    model = RECORDS[name]
    assert set(model.model_fields) == set(schema["properties"])
    assert {n for n, f in model.model_fields.items() if f.is_required()} <= set(schema["required"])


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{type(s).__name__}")
def test_records_validate_against_their_schema(sample: ModelEvent | RetrainRequest) -> None:
    name = next(n for n, model in RECORDS.items() if isinstance(sample, model))
    contracts.validate(name, sample.to_json())


def test_topics_are_registered() -> None:
    assert topics.spec("model").schema == "model.v1.json" and topics.spec("model").partitions == 1
    assert topics.spec("retrain").schema == "retrain.v1.json"
