"""Salesforce CDC, PushTopic and platform events -> EntityEvents and DocumentEvents."""

from __future__ import annotations

import copy

import pytest

from connectors.base import ConnectorError
from connectors.salesforce import SalesforceConnector
from streamdesk.contracts import DocumentEvent, EntityEvent
from tests.connectors.helpers import lines, load, message, only, raw_valid, valid

TOPIC = "raw.salesforce"


@pytest.fixture
def connector() -> SalesforceConnector:
    return SalesforceConnector()


def pubsub_update() -> dict:
    return load("salesforce", "pozil_pubsub_account_change_event_update.json")


def test_pubsub_account_update_is_partial_with_nulls_meaning_unchanged(connector: SalesforceConnector) -> None:
    event = only(connector.parse(message(TOPIC, pubsub_update())), EntityEvent)
    assert (event.entity_type, event.external_id, event.op, event.partial) == (
        "customer",
        "0014H00002LbR7QQAV",
        "upsert",
        True,
    )
    assert event.event_id == "salesforce:18098167"
    assert event.version == [1696444513000, 11657372702432, 1]
    assert event.attributes["BillingAddress"] == {"City": "San Francisco", "State": "CA"}
    assert event.attributes["salesforce_object"] == "Account"
    assert "Name" not in event.attributes and "Phone" not in event.attributes
    assert event.nulled_fields == []


def test_nulled_fields_and_diff_fields(connector: SalesforceConnector) -> None:
    value = pubsub_update()
    header = value["payload"]["ChangeEventHeader"]
    header["nulledFields"] = ["Phone"]
    header["diffFields"] = ["Description"]
    value["payload"]["Description"] = "@@ -1 +1 @@\n-old\n+new"
    [event] = valid(connector.parse(message(TOPIC, value)))
    assert event.nulled_fields == ["Phone", "phone"]
    assert "Description" not in event.attributes
    assert event.unchanged_fields == ["Description"]


def test_the_same_event_twice_has_the_same_id_and_version(connector: SalesforceConnector) -> None:
    first = connector.parse(message(TOPIC, pubsub_update(), offset=1))
    again = connector.parse(message(TOPIC, pubsub_update(), offset=99))
    assert [(e.event_id, e.version) for e in first] == [(e.event_id, e.version) for e in again]


def test_one_event_for_each_record_id(connector: SalesforceConnector) -> None:
    value = pubsub_update()
    value["payload"]["ChangeEventHeader"]["recordIds"] = ["001A", "001B", "001C"]
    events = valid(connector.parse(message(TOPIC, value)))
    assert [e.external_id for e in events] == ["001A", "001B", "001C"]
    assert len({e.event_id for e in events}) == 3
    assert all(e.event_id.startswith("salesforce:18098167:") for e in events)


def test_connect_json_contact_create_is_a_full_upsert_with_normalised_names(connector: SalesforceConnector) -> None:
    value = load("salesforce", "kdp_salesforce_cdc_contact_create_connect_json.json")
    raw_valid("salesforce", value)
    event = only(connector.parse(message(TOPIC, value)), EntityEvent)
    assert (event.external_id, event.op, event.partial) == ("0032X00002QU10JQAT", "upsert", False)
    assert event.event_id == "salesforce:1305887"
    assert event.attributes["first_name"] == "John_1241"
    assert event.attributes["last_name"] == "Doe_19419"
    assert event.attributes["name"] == "John_1241 Doe_19419"
    assert event.attributes["FirstName"] == "John_1241"
    assert "ChangeEventHeader" not in event.attributes


def test_pushtopic_lead_created(connector: SalesforceConnector) -> None:
    value = load("salesforce", "kdp_salesforce_pushtopic_lead_connect_json.json")
    raw_valid("salesforce", value)
    event = only(connector.parse(message(TOPIC, value)), EntityEvent)
    assert (event.entity_type, event.external_id, event.partial) == ("customer", "00Q2X00001OPBbQUAX", False)
    assert event.attributes["email"] == "csdcsd@titi.com"
    assert event.attributes["salesforce_object"] == "Lead"
    assert event.version == [1595578138000]


def test_pushtopic_deleted(connector: SalesforceConnector) -> None:
    value = load("salesforce", "kdp_salesforce_pushtopic_lead_connect_json.json")
    value["payload"]["_EventType"] = "deleted"
    [event] = valid(connector.parse(message(TOPIC, value)))
    assert event.op == "delete"


def test_platform_events_become_internal_documents(connector: SalesforceConnector) -> None:
    events = []
    for record in lines("salesforce", "kdp_salesforce_platform_events_connect_json.jsonl"):
        raw_valid("salesforce", record)
        events += valid(connector.parse(message(TOPIC, record)))
    assert [e.event_id for e in events] == ["salesforce:2956549", "salesforce:2956550"]
    first = events[0]
    assert isinstance(first, DocumentEvent)
    assert (first.doc_type, first.access.level, first.version) == ("salesforce_event", "internal", [2956549])
    assert "test message 1" in first.body


def test_pubsub_platform_event_takes_its_name_from_the_topic_header(connector: SalesforceConnector) -> None:
    value = {
        "id": "e1",
        "schemaId": "s1",
        "replayId": 77,
        "payload": {"CreatedDate": 1696444513000, "CreatedById": "005x", "Message__c": "hello"},
    }
    raw_valid("salesforce", value)
    event = only(
        connector.parse(message(TOPIC, value, headers={"Salesforce-Topic": "/event/MyPlatformEvent__e"})), DocumentEvent
    )
    assert event.external_id == "MyPlatformEvent__e:77"


@pytest.mark.parametrize(
    ("entity", "expected"),
    [("Order", "order"), ("Product2", "product"), ("blng__Invoice__c", "invoice"), ("OrderItem", "order_item")],
)
def test_object_mapping(connector: SalesforceConnector, entity: str, expected: str) -> None:
    value = copy.deepcopy(pubsub_update())
    value["payload"]["ChangeEventHeader"]["entityName"] = entity
    event = only(connector.parse(message(TOPIC, value)), EntityEvent)
    assert event.entity_type == expected


def test_other_objects_are_kept_as_event_documents(connector: SalesforceConnector) -> None:
    value = pubsub_update()
    value["payload"]["ChangeEventHeader"]["entityName"] = "Case"
    event = only(connector.parse(message(TOPIC, value)), DocumentEvent)
    assert event.doc_type == "salesforce_event"
    assert "San Francisco" in event.body


def test_delete_and_undelete(connector: SalesforceConnector) -> None:
    value = pubsub_update()
    value["payload"]["ChangeEventHeader"]["changeType"] = "DELETE"
    [gone] = valid(connector.parse(message(TOPIC, value)))
    assert (gone.op, gone.attributes) == ("delete", {})
    value["payload"]["ChangeEventHeader"]["changeType"] = "UNDELETE"
    [back] = valid(connector.parse(message(TOPIC, value)))
    assert (back.op, back.partial) == ("upsert", False)


@pytest.mark.parametrize("change_type", ["GAP_UPDATE", "GAP_OVERFLOW", "EXPLODE"])
def test_gap_and_unknown_change_types_are_errors(connector: SalesforceConnector, change_type: str) -> None:
    value = pubsub_update()
    value["payload"]["ChangeEventHeader"]["changeType"] = change_type
    with pytest.raises(ConnectorError, match=change_type):
        connector.parse(message(TOPIC, value))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda v: v["payload"]["ChangeEventHeader"].update(recordIds=[]), "recordIds"),
        (lambda v: v["payload"]["ChangeEventHeader"].update(recordIds="001A"), "recordIds"),
        (lambda v: v["payload"]["ChangeEventHeader"].pop("entityName"), "entityName"),
        (lambda v: v["payload"]["ChangeEventHeader"].update(commitNumber="many"), "commitNumber"),
        (lambda v: v.update(replayId="abc"), "ReplayId"),
        (lambda v: v.update(payload={"Name": "x"}), "no ChangeEventHeader"),
    ],
)
def test_malformed_events_are_errors(connector: SalesforceConnector, mutate, match: str) -> None:
    value = pubsub_update()
    mutate(value)
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(TOPIC, value))


def test_unknown_pushtopic_event_type(connector: SalesforceConnector) -> None:
    value = load("salesforce", "kdp_salesforce_pushtopic_lead_connect_json.json")
    value["payload"]["_EventType"] = "exploded"
    with pytest.raises(ConnectorError, match="exploded"):
        connector.parse(message(TOPIC, value))


def test_streaming_api_cometd_message(connector: SalesforceConnector) -> None:
    lead = load("salesforce", "kdp_salesforce_pushtopic_lead_connect_json.json")["payload"]
    sobject = {k: v for k, v in lead.items() if not k.startswith("_")}
    value = {"channel": "/topic/LeadUpdates", "data": {"event": {"type": "updated", "replayId": 5}, "sobject": sobject}}
    raw_valid("salesforce", value)
    [as_document] = valid(connector.parse(message(TOPIC, value)))  # a PushTopic name is not an object name
    assert isinstance(as_document, DocumentEvent)
    event = only(connector.parse(message(TOPIC, value, headers={"salesforce-object": "Lead"})), EntityEvent)
    assert (event.event_id, event.external_id) == ("salesforce:5", "00Q2X00001OPBbQUAX")
    assert event.version == [1595578138000, 5]


def test_raw_schema_rejects_garbage() -> None:
    from streamdesk.exceptions import ContractError

    raw_valid("salesforce", pubsub_update())
    for garbage in ([1], {"payload": {"ChangeEventHeader": {"entityName": "A"}}}, {"hello": "world"}):
        with pytest.raises(ContractError):
            raw_valid("salesforce", garbage)
