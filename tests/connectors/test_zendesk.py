"""Zendesk webhooks and records -> TicketEvents and customer EntityEvents."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from connectors.base import ConnectorError
from connectors.zendesk import ZendeskConnector
from streamdesk.contracts import EntityEvent, TicketEvent
from tests.connectors.helpers import lines, load, message, only, raw_valid, valid

TOPIC = "raw.zendesk"


@pytest.fixture
def connector() -> ZendeskConnector:
    return ZendeskConnector()


def webhooks() -> list[dict[str, Any]]:
    return lines("zendesk", "dust_zendesk_ticket_webhook_events.jsonl")


def tickets(connector: ZendeskConnector) -> list[TicketEvent]:
    events = []
    for body in webhooks():
        raw_valid("zendesk", body)
        events += valid(connector.parse(message(TOPIC, body)))
    assert all(isinstance(e, TicketEvent) for e in events)
    return events


def test_each_webhook_type_maps_to_its_ticket_event(connector: ZendeskConnector) -> None:
    events = tickets(connector)
    assert [e.event_type for e in events] == [
        "created",
        "comment_added",
        "priority_changed",
        "assignment_changed",
        "status_changed",
    ]
    assert {e.ticket_id for e in events} == {"5158"}
    created, comment, priority, assignment, status = events
    assert created.event_id == "zendesk:cbe4028c-7239-495d-b020-f22348516046"
    assert created.subject == "Cannot login to mobile app"
    assert created.body == "Customer is experiencing login issues with the mobile app"
    assert (created.status, created.priority) == ("open", "high")
    assert created.requester is not None and created.requester.id == "8447388090494"
    assert created.customer_id == "8447346622462"
    assert created.tags == ["mobile", "login"]
    assert comment.body == "We are investigating this issue and will update you shortly."
    assert comment.metadata["comment"]["author"]["is_staff"] is True
    assert comment.metadata["from_requester"] is False  # staff wrote it: not answered as the customer's message
    assert (priority.priority, priority.metadata["previous"]) == ("urgent", "HIGH")
    assert assignment.assignee_id == "8447388090496"
    assert status.status == "solved"


def test_versions_follow_event_time_with_a_sub_millisecond_tiebreak(connector: ZendeskConnector) -> None:
    created, comment, priority, assignment, status = tickets(connector)
    assert created.version == [1736331127672, 717030]
    assert created.version < priority.version < assignment.version < comment.version < status.version


def test_redelivered_webhook_keeps_its_event_id(connector: ZendeskConnector) -> None:
    body = webhooks()[1]
    assert connector.parse(message(TOPIC, body, offset=1)) == connector.parse(message(TOPIC, body, offset=2))


def test_other_documented_ticket_changes_are_updates(connector: ZendeskConnector) -> None:
    body = {**webhooks()[0], "type": "zen:event-type:ticket.tags_changed", "id": "t-1"}
    event = only(connector.parse(message(TOPIC, body)), TicketEvent)
    assert (event.event_type, event.body) == ("updated", None)


def test_ticket_id_falls_back_to_the_subject(connector: ZendeskConnector) -> None:
    body = {**webhooks()[2], "detail": {}}
    [event] = valid(connector.parse(message(TOPIC, body)))
    assert isinstance(event, TicketEvent) and event.ticket_id == "5158"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"type": "zen:event-type:ticket.exploded"}, "unknown Zendesk event type 'zen:event-type:ticket.exploded'"),
        ({"type": "zen:event-type:user.created"}, "unknown Zendesk event type"),
        ({"id": ""}, "no event 'id'"),
        ({"detail": {}, "subject": "zen:user:1"}, "names no ticket"),
        ({"time": 12}, "no ISO 'time'"),
        ({"time": "not a time"}, "not an ISO-8601"),
    ],
)
def test_malformed_webhooks_are_errors(connector: ZendeskConnector, change: dict[str, Any], match: str) -> None:
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(TOPIC, {**webhooks()[0], **change}))


def test_organization_record_is_a_customer_organisation(connector: ZendeskConnector) -> None:
    record = load("zendesk", "kdp_zendesk_organization_record.json")
    raw_valid("zendesk", record)
    event = only(connector.parse(message(TOPIC, record)), EntityEvent)
    assert (event.entity_type, event.external_id, event.op) == ("customer", "organization:361115952791", "upsert")
    assert event.version == [1595013275000]
    assert event.attributes["kind"] == "organization"
    assert event.attributes["name"] == "/"


def test_user_and_ticket_records(connector: ZendeskConnector) -> None:
    user = {
        "id": 7,
        "url": "https://x.zendesk.com/api/v2/users/7.json",
        "name": "Ada",
        "email": "ada@example.com",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    person = only(connector.parse(message(TOPIC, user)), EntityEvent)
    assert (person.external_id, person.attributes["email"]) == ("user:7", "ada@example.com")
    ticket = {
        "id": 42,
        "url": "https://x.zendesk.com/api/v2/tickets/42.json",
        "subject": "Broken",
        "status": "pending",
        "tags": ["a"],
        "updated_at": 1_700_000_000_000,
    }
    event = only(connector.parse(message(TOPIC, ticket)), TicketEvent)
    assert (event.ticket_id, event.event_type, event.status) == ("42", "updated", "pending")


def test_snowplow_ticket_updated_body(connector: ZendeskConnector) -> None:
    body = {
        "account": "acme",
        "brand": "Acme",
        "ccNames": "",
        "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-02T11:30:00Z",
        "dueDate": None,
        "groupAssigned": "Support",
        "ticketId": 981,
        "externalId": None,
        "inBusinessHours": True,
        "organizationName": "Acme Corp",
        "organizationId": 55,
        "priority": "High",
        "status": "Pending",
        "tags": "vip billing",
        "ticketType": "Question",
        "ticketTitle": "Refund not received",
        "url": "acme.zendesk.com/agent/tickets/981",
        "via": "Web form",
        "latestCommentAuthorName": "Ada",
        "latestComment": "Still waiting for my refund",
        "latestCommentIsPublic": True,
    }
    schema = load("zendesk", "iglu_com.zendesk.snowplow_ticket_updated_1-0-0.schema.json")
    jsonschema.Draft4Validator(schema).validate(body)
    raw_valid("zendesk", body)
    event = only(connector.parse(message(TOPIC, body)), TicketEvent)
    assert (event.ticket_id, event.event_type, event.status, event.priority) == ("981", "updated", "pending", "high")
    assert (event.customer_id, event.tags) == ("55", ["vip", "billing"])
    assert event.metadata["latestComment"] == "Still waiting for my refund"


def test_unrecognised_payloads_are_errors(connector: ZendeskConnector) -> None:
    with pytest.raises(ConnectorError, match="neither an event webhook"):
        connector.parse(message(TOPIC, {"hello": "world"}))
    with pytest.raises(ConnectorError, match="JSON object"):
        connector.parse(message(TOPIC, [1]))
