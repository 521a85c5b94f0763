"""HubSpot webhook bodies -> EntityEvents; fixtures checked against the Snowplow HubSpot schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from connectors.base import ConnectorError
from connectors.hubspot import HubSpotConnector
from streamdesk.contracts import EntityEvent
from tests.connectors.helpers import fixture, load, message, raw_valid, valid

TOPIC = "raw.hubspot"
ACTION_SCHEMA = {"creation": "creation", "propertyChange": "change", "deletion": "deletion"}


@pytest.fixture
def connector() -> HubSpotConnector:
    return HubSpotConnector()


def batch() -> list[dict[str, Any]]:
    return load("hubspot", "webhook_batch.json")


def snowplow_form(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(schema file, body) as Snowplow's HubSpot adapter sees one event: no subscriptionType, ISO time."""
    obj, action = event["subscriptionType"].split(".")
    body = {k: v for k, v in event.items() if k != "subscriptionType"}
    body["occurredAt"] = datetime.fromtimestamp(event["occurredAt"] / 1000, UTC).isoformat().replace("+00:00", "Z")
    return f"iglu_com.hubspot_{obj}_{ACTION_SCHEMA[action]}_1-0-0.schema.json", body


def test_fixture_bodies_conform_to_the_snowplow_schemas() -> None:
    for event in batch():
        name, body = snowplow_form(event)
        schema = load("hubspot", name)
        jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(body)
    raw_valid("hubspot", batch())


def test_the_batch_becomes_one_event_each(connector: HubSpotConnector) -> None:
    events = valid(connector.parse(message(TOPIC, fixture("hubspot", "webhook_batch.json").read_bytes())))
    assert len(events) == len(batch())
    assert all(isinstance(e, EntityEvent) for e in events)
    by_kind = {(e.external_id, e.op) for e in events}
    assert ("contact:1246965", "delete") in by_kind
    assert ("company:5790939", "upsert") in by_kind


def test_property_change_is_a_partial_upsert_with_canonical_names(connector: HubSpotConnector) -> None:
    [email, first] = [e for e in connector.parse(message(TOPIC, batch()[1:3]))]
    assert isinstance(email, EntityEvent) and isinstance(first, EntityEvent)
    assert (email.entity_type, email.partial, email.op) == ("customer", True, "upsert")
    assert email.attributes["email"] == "ada.lovelace@example.com"
    assert first.attributes["firstname"] == "Ada" and first.attributes["first_name"] == "Ada"
    assert email.version == [1462216307946, 1381662802]
    assert email.version < first.version


def test_company_is_a_customer_organisation_and_deal_is_an_order(connector: HubSpotConnector) -> None:
    events = valid(connector.parse(message(TOPIC, batch())))
    company = next(e for e in events if e.external_id == "company:5790939" and e.op == "upsert")
    assert isinstance(company, EntityEvent)
    assert company.attributes["kind"] == "organization"
    amount = next(e for e in events if isinstance(e, EntityEvent) and "amount" in e.attributes)
    assert (amount.entity_type, amount.attributes["total"]) == ("order", "1500.50")
    stage = next(e for e in events if isinstance(e, EntityEvent) and "dealstage" in e.attributes)
    assert stage.attributes["status"] == "closedwon"


def test_retries_of_the_same_event_id_are_the_same_event(connector: HubSpotConnector) -> None:
    events = connector.parse(message(TOPIC, batch()))
    first, retry = events[7], events[8]
    assert first.event_id == retry.event_id
    assert first.version == retry.version


def test_single_event_body_and_iso_occurred_at(connector: HubSpotConnector) -> None:
    event = batch()[1]
    _, snowplow = snowplow_form(event)
    [from_ms] = connector.parse(message(TOPIC, event))
    [from_iso] = valid(connector.parse(message(TOPIC, {**event, "occurredAt": snowplow["occurredAt"]})))
    assert from_ms.version == from_iso.version
    assert from_ms.occurred_at == from_iso.occurred_at


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"subscriptionType": "contact.merge"}, "unsupported HubSpot subscriptionType 'contact.merge'"),
        ({"subscriptionType": "ticket.creation"}, "unsupported"),
        ({"subscriptionType": None}, "no subscriptionType"),
        ({"objectId": None}, "no objectId"),
        ({"objectId": "abc"}, "objectId must be an integer"),
        ({"eventId": True}, "eventId must be an integer"),
        ({"occurredAt": "yesterday"}, "occurredAt"),
        ({"propertyName": ""}, "no propertyName"),
    ],
)
def test_malformed_events_are_errors(connector: HubSpotConnector, change: dict[str, Any], match: str) -> None:
    event = {**batch()[1], **change}
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(TOPIC, [event]))


def test_non_object_items_are_errors(connector: HubSpotConnector) -> None:
    with pytest.raises(ConnectorError, match="#1 must be a JSON object"):
        connector.parse(message(TOPIC, [batch()[0], "nope"]))
