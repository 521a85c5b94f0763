"""Code and schemas/ stay in step: every canonical record matches its topic's JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import BaseModel

from streamdesk import contracts, topics
from streamdesk.config import get_settings
from streamdesk.contracts import (
    Access,
    DeadLetter,
    DocumentEvent,
    EntityEvent,
    Requester,
    StoredTicket,
    TicketEvent,
    TicketState,
)
from streamdesk.exceptions import ContractError
from tests.factories import ticket_event

RECORDS: dict[str, type[BaseModel]] = {
    "document.v1.json": DocumentEvent,
    "entity.v1.json": EntityEvent,
    "ticket.v1.json": TicketEvent,
    "dead_letter.v1.json": DeadLetter,
    "ticket_stored.v1.json": StoredTicket,
}
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SAMPLES: list[BaseModel] = [
    DocumentEvent(
        event_id="e1",
        source="wordpress",
        external_id="42",
        op="upsert",
        version=[1700000000000, 42],
        occurred_at=NOW,
        title="Returns",
        body="How returns work.",
        url="https://example.com/returns",
        access=Access(level="restricted", groups=["billing"]),
        metadata={"lang": "en"},
    ),
    DocumentEvent(event_id="e2", source="wordpress", external_id="42", op="tombstone", version=[], occurred_at=NOW),
    EntityEvent(
        event_id="e3",
        source="debezium",
        entity_type="order",
        external_id="#W1",
        op="upsert",
        version=[99],
        occurred_at=NOW,
        attributes={"customer_id": "u1", "status": "pending", "total": 10.5},
        unchanged_fields=["notes"],
    ),
    ticket_event(
        "7", event_id="e4", occurred_at=NOW, subject="Where is my order?", requester=Requester(email="a@example.com")
    ),
    DeadLetter(topic="raw.zendesk", partition=0, offset=3, value_b64="e30=", reason="bad", error_type="X", stage="raw"),
]
CREATED = next(sample for sample in SAMPLES if isinstance(sample, TicketEvent))
STORED = StoredTicket(
    event=CREATED.model_copy(update={"event_id": "e5", "event_type": "comment_added", "subject": None}),
    ticket=TicketState(version=[1], subject=CREATED.subject, requester=CREATED.requester, tags=["vip"]),
)
SAMPLES.append(STORED)


def _schema(name: str) -> dict:
    return json.loads((get_settings().schemas_dir / name).read_text())


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_record_fields_and_schema_properties_are_the_same(name: str) -> None:
    schema = _schema(name)
    model = RECORDS[name]
    assert set(model.model_fields) == set(schema["properties"]), f"{model.__name__} and {name} drifted apart"
    required_in_code = {n for n, f in model.model_fields.items() if f.is_required()}
    assert required_in_code <= set(schema["required"]), f"{name} must require what the code requires"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_records_the_code_builds_validate_against_their_schema(sample: BaseModel) -> None:
    name = next(n for n, model in RECORDS.items() if isinstance(sample, model))
    contracts.validate(name, sample.model_dump(mode="json"))


def test_a_stored_ticket_holds_the_ticket_fields_and_its_event_follows_the_ticket_schema() -> None:
    schema = _schema("ticket_stored.v1.json")
    assert set(schema["properties"]["ticket"]["properties"]) == set(TicketState.model_fields)
    assert set(TicketState.model_fields) - {"version", "tags"} <= set(_schema("ticket.v1.json")["properties"])
    assert schema["properties"]["event"] == {"$ref": "ticket.v1.json"}
    assert topics.spec(topics.STORED_TICKET).schema == "ticket_stored.v1.json"
    payload = STORED.to_json()
    with pytest.raises(ContractError, match="at event/event_type: 'bogus' is not one of"):
        contracts.validate("ticket_stored.v1.json", payload | {"event": payload["event"] | {"event_type": "bogus"}})
    assert StoredTicket.model_validate(payload) == STORED


def test_enumerations_agree() -> None:
    assert set(_schema("entity.v1.json")["properties"]["entity_type"]["enum"]) == set(
        EntityEvent.model_fields["entity_type"].annotation.__args__  # type: ignore[union-attr]
    )
    assert set(_schema("ticket.v1.json")["properties"]["event_type"]["enum"]) == set(
        TicketEvent.model_fields["event_type"].annotation.__args__  # type: ignore[union-attr]
    )
    assert set(_schema("document.v1.json")["$defs"]["access"]["properties"]["level"]["enum"]) == set(
        Access.model_fields["level"].annotation.__args__  # type: ignore[union-attr]
    )


def test_every_registered_topic_names_a_valid_schema() -> None:
    for spec in topics.registry().values():
        jsonschema.Draft202012Validator.check_schema(_schema(spec.schema))


def test_an_upsert_without_a_version_is_refused() -> None:
    payload = SAMPLES[0].model_dump(mode="json") | {"version": []}
    with pytest.raises(ContractError, match="version"):
        contracts.validate("document.v1.json", payload)


def test_a_ticket_text_over_the_limit_is_cut_and_the_cut_recorded() -> None:
    limit = get_settings().ingest.ticket_text_max_chars
    event = ticket_event(
        "1",
        event_id="t1",
        occurred_at=NOW,
        subject="Where is my order?",
        body="x" * 50_000,
        metadata={"zendesk_type": "ticket.created"},
    )
    assert event.body == "x" * limit and event.subject == "Where is my order?"
    assert event.metadata == {
        "zendesk_type": "ticket.created",
        "text_cut": {"body": {"original_chars": 50_000, "kept_chars": limit}},
    }
    contracts.validate("ticket.v1.json", event.to_json())
    assert TicketEvent.model_validate(event.to_json()) == event  # a consumer re-reading it keeps the record
