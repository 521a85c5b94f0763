"""Debezium change events -> EntityEvents."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError
from connectors.debezium import DebeziumConnector
from streamdesk.contracts import EntityEvent
from tests.connectors.helpers import lines, load, message, raw_valid, valid

CUSTOMERS = "raw.debezium.customers"


@pytest.fixture
def connector() -> DebeziumConnector:
    return DebeziumConnector()


def entity(events: list) -> EntityEvent:
    assert len(events) == 1
    assert isinstance(events[0], EntityEvent)
    return events[0]


def docs_record(label: str) -> dict:
    return next(r for r in lines("debezium", "debezium_docs_postgres_customers_events.jsonl") if r["label"] == label)


def parse_docs(connector: DebeziumConnector, label: str) -> list:
    record = docs_record(label)
    return valid(connector.parse(message(CUSTOMERS, record["value"], key=record["key"], offset=42)))


def test_postgres_create_with_schema_envelope_is_a_full_upsert(connector: DebeziumConnector) -> None:
    event = entity(parse_docs(connector, "create"))
    assert (event.entity_type, event.external_id, event.op, event.partial) == ("customer", "1", "upsert", False)
    assert event.version == [24023128, 555]
    assert event.attributes["first_name"] == "Anne"
    assert event.attributes["email"] == "annek@noanswer.org"
    assert event.attributes["name"] == "Anne Kretchmar"
    assert event.event_id == "debezium:customers:1:c:24023128.555"


def test_postgres_update_orders_after_the_create_and_delete_after_the_update(connector: DebeziumConnector) -> None:
    create = entity(parse_docs(connector, "create"))
    update = entity(parse_docs(connector, "update"))
    delete = entity(parse_docs(connector, "delete"))
    assert update.attributes["first_name"] == "Anne Marie"
    assert create.version < update.version < delete.version
    assert delete.op == "delete" and delete.attributes == {}
    assert len({create.event_id, update.event_id, delete.event_id}) == 3


def test_tombstone_has_no_version_and_takes_its_id_from_the_schema_key(connector: DebeziumConnector) -> None:
    event = entity(parse_docs(connector, "tombstone"))
    assert (event.op, event.version, event.external_id) == ("tombstone", [], "1")
    assert event.event_id == entity(parse_docs(connector, "tombstone")).event_id  # stable on redelivery


def test_tombstone_with_a_plain_key_and_no_key(connector: DebeziumConnector) -> None:
    event = entity(valid(connector.parse(message("raw.debezium.orders", None, key={"id": 9}))))
    assert (event.entity_type, event.external_id, event.op) == ("order", "9", "tombstone")
    with pytest.raises(ConnectorError, match="no key"):
        connector.parse(message("raw.debezium.orders", None))


def test_plain_text_keys_are_used_as_is(connector: DebeziumConnector) -> None:
    raw = message("raw.debezium.orders", None)
    event = entity(connector.parse(type(raw)(topic=raw.topic, value=None, key=b"#W2002")))
    assert event.external_id == "#W2002"


def test_composite_keys_are_joined_with_colons(connector: DebeziumConnector) -> None:
    event = entity(connector.parse(message("raw.debezium.order_items", None, key={"order_id": 7, "line": 2})))
    assert event.external_id == "7:2"


@pytest.mark.parametrize("label", ["truncate", "message_transactional"])
def test_truncate_and_logical_messages_are_no_ops(connector: DebeziumConnector, label: str) -> None:
    assert parse_docs(connector, label) == []


@pytest.mark.parametrize("name", ["debezium_test_serde-with-schema.json", "debezium_test_serde-without-schema.json"])
def test_mysql_create_with_and_without_schema_gives_the_same_event(connector: DebeziumConnector, name: str) -> None:
    event = entity(valid(connector.parse(message(CUSTOMERS, load("debezium", name)))))
    assert event.external_id == "1004"
    assert event.version == [3, 154, 0]  # binlog file number, position, row
    assert event.attributes["last_name"] == "Kretchmar"


def test_schema_drift_adds_attributes(connector: DebeziumConnector) -> None:
    event = entity(
        valid(connector.parse(message(CUSTOMERS, load("debezium", "debezium_test_serde-unknown-property.json"))))
    )
    assert event.attributes["middle_name"] == "L"


def test_unwrapped_row_uses_key_or_primary_key_and_kafka_coordinates(connector: DebeziumConnector) -> None:
    row = load("debezium", "debezium_test_serde-unwrapped.json")
    event = entity(valid(connector.parse(message(CUSTOMERS, row, offset=11, timestamp_ms=1_700_000_000_123))))
    assert (event.external_id, event.op, event.version) == ("1004", "upsert", [1_700_000_000_123, 11])
    assert "__deleted" not in event.attributes


def test_unwrapped_row_with_metadata_fields_and_rewrite_delete(connector: DebeziumConnector) -> None:
    row = {"order_id": 55, "status": "shipped", "__lsn": 900, "__txId": 4, "__source_ts_ms": 1_600_000_000_000}
    upsert = entity(valid(connector.parse(message("raw.debezium.orders", row))))
    assert (upsert.external_id, upsert.version) == ("55", [900, 4])
    assert upsert.attributes == {"order_id": 55, "status": "shipped"}
    gone = entity(valid(connector.parse(message("raw.debezium.orders", {**row, "__lsn": 901, "__deleted": "true"}))))
    assert (gone.op, gone.attributes, gone.version) == ("delete", {}, [901, 4])


def test_toast_placeholders_are_kept_out_of_attributes(connector: DebeziumConnector) -> None:
    value = docs_record("update")["value"]
    value["payload"]["after"]["notes"] = "__debezium_unavailable_value"
    event = entity(valid(connector.parse(message(CUSTOMERS, value))))
    assert "notes" not in event.attributes
    assert event.unchanged_fields == ["notes"]


def test_avro_as_json_unions_are_unwrapped(connector: DebeziumConnector) -> None:
    value = load("debezium", "kdp_debezium_postgres_customers_avro_as_json.json")
    raw_valid("debezium", value)
    event = entity(valid(connector.parse(message(CUSTOMERS, value))))
    assert event.external_id == "5"
    assert event.version == [24523120, 580]
    assert event.attributes["email"] == "hcoda4@senate.gov"
    assert event.attributes["create_ts"] == 1570208046048403  # temporal numbers stay numbers


def test_unknown_table_is_an_error_naming_it_even_on_a_known_tables_topic(connector: DebeziumConnector) -> None:
    value = load("debezium", "kdp_debezium_mysql_team_avro_as_json.json")
    with pytest.raises(ConnectorError, match="'team'"):
        connector.parse(message("raw.debezium.team", value))
    with pytest.raises(ConnectorError, match="unknown Debezium table 'team'"):  # not filed under customers
        connector.parse(message(CUSTOMERS, value))
    aliased = DebeziumConnector(tables={"team": "customer"})
    routed = entity(valid(aliased.parse(message(CUSTOMERS, value))))
    assert (routed.entity_type, routed.external_id, routed.version) == ("customer", "1", [3, 457, 0])
    assert entity(aliased.parse(message("raw.debezium.team", value))).attributes["email"] == "kafka@apache.org"


def test_table_comes_from_the_topic_when_source_has_none(connector: DebeziumConnector) -> None:
    value = {"op": "c", "after": {"id": 3, "name": "Widget", "price": 9.5}, "source": {"ts_ms": 1_600_000_000_000}}
    event = entity(valid(connector.parse(message("raw.debezium.products", value))))
    assert (event.entity_type, event.version) == ("product", [1_600_000_000_000])


def test_flink_products_stream(connector: DebeziumConnector) -> None:
    events = []
    for offset, record in enumerate(lines("debezium", "flink_debezium_postgres_products.jsonl")):
        raw_valid("debezium", record)
        events += valid(connector.parse(message("raw.debezium.products", record, offset=offset)))
    assert len(events) == 16
    assert {e.entity_type for e in events} == {"product"}
    assert [e.op for e in events].count("delete") == 1
    deleted = next(e for e in events if e.op == "delete")
    assert deleted.external_id == "111"
    assert all(e.attributes["name"] for e in events if e.op == "upsert")


def test_orders_keep_their_columns_and_gain_canonical_names(connector: DebeziumConnector) -> None:
    after = {"order_id": "#W1", "user_id": "ada_1", "status": "pending", "items": [{"item_id": "1"}]}
    value = {"op": "c", "after": after, "source": {"connector": "postgresql", "lsn": 10, "txId": 1, "table": "orders"}}
    event = entity(valid(connector.parse(message("raw.debezium.orders", value, key={"order_id": "#W1"}))))
    assert event.attributes["user_id"] == "ada_1"
    assert event.attributes["customer_id"] == "ada_1"
    assert event.external_id == "#W1"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1, 2], "JSON object"),
        ({"op": "x", "source": {}, "after": {}}, "unknown Debezium op 'x'"),
        ({"op": "c", "after": "not-a-row", "before": None, "source": {"table": "customers"}}, "no 'after' row"),
        ({"op": "c", "after": {"name": "no id"}, "source": {"table": "customers"}}, "has no id"),
        ({}, "empty object"),
        ({"op": "u", "after": {"id": 1}, "source": {"connector": "mysql", "file": "binlog", "pos": 4}}, "binlog"),
    ],
)
def test_unusable_values_raise_connector_errors(connector: DebeziumConnector, value: object, match: str) -> None:
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(CUSTOMERS, value))


def test_wrong_types_in_version_fields_are_named(connector: DebeziumConnector) -> None:
    value = {"op": "c", "after": {"id": 1}, "source": {"connector": "postgresql", "lsn": "abc", "table": "customers"}}
    with pytest.raises(ConnectorError, match=r"source\.lsn"):
        connector.parse(message(CUSTOMERS, value))


def test_every_debezium_fixture_matches_the_raw_schema() -> None:
    for name in (
        "debezium_test_serde-with-schema.json",
        "debezium_test_serde-without-schema.json",
        "debezium_test_serde-update.json",
        "debezium_test_serde-unknown-property.json",
        "debezium_test_serde-unwrapped.json",
        "kdp_debezium_mysql_team_avro_as_json.json",
    ):
        raw_valid("debezium", load("debezium", name))
    for record in lines("debezium", "debezium_docs_postgres_customers_events.jsonl"):
        if record["value"] is not None:
            raw_valid("debezium", record["value"])
