"""Every payload file in shared/data/cdc goes through a connector, and the copies here still match."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Connector, RawMessage
from connectors.debezium import DebeziumConnector
from connectors.registry import connector_for
from tests.connectors.helpers import FIXTURES, message, valid

Feed = Callable[[Path], Iterator[tuple[str, RawMessage]]]


def json_values(topic: str, headers: dict[str, str] | None = None) -> Feed:
    def feed(path: Path) -> Iterator[tuple[str, RawMessage]]:
        yield topic.split(".")[1], message(topic, path.read_bytes(), headers=headers)

    return feed


def json_lines(topic: str) -> Feed:
    def feed(path: Path) -> Iterator[tuple[str, RawMessage]]:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if path.name.startswith("debezium_docs"):
                yield "debezium", message(topic, record["value"], key=record["key"])
            else:
                yield topic.split(".")[1], message(topic, record)

    return feed


def each_member(topic: str, unwrap: Callable[[Any], dict[str, Any]]) -> Feed:
    def feed(path: Path) -> Iterator[tuple[str, RawMessage]]:
        for value in unwrap(json.loads(path.read_text())).values():
            yield topic.split(".")[1], message(topic, value)

    return feed


def csv_rows(mapping: str, delimiter: str) -> Feed:
    def feed(path: Path) -> Iterator[tuple[str, RawMessage]]:
        for offset, row in enumerate(csv.DictReader(io.StringIO(path.read_text()), delimiter=delimiter)):
            yield "mapped", message("raw.mapped", row, headers={"mapping": mapping}, offset=offset)

    return feed


def schema_only(path: Path) -> Iterator[tuple[str, RawMessage]]:
    """JSON Schemas, not payloads: test_hubspot and test_zendesk validate fixtures against them."""
    json.loads(path.read_text())
    return iter(())


PLAN: dict[str, Feed] = {
    "debezium/debezium_docs_postgres_customers_events.jsonl": json_lines("raw.debezium.customers"),
    "debezium/debezium_test_serde-unknown-property.json": json_values("raw.debezium.customers"),
    "debezium/debezium_test_serde-unwrapped.json": json_values("raw.debezium.customers"),
    "debezium/debezium_test_serde-update.json": json_values("raw.debezium.customers"),
    "debezium/debezium_test_serde-with-schema.json": json_values("raw.debezium.customers"),
    "debezium/debezium_test_serde-without-schema.json": json_values("raw.debezium.customers"),
    "debezium/flink_debezium_postgres_products.jsonl": json_lines("raw.debezium.products"),
    "debezium/kdp_debezium_mysql_team_avro_as_json.json": json_values("raw.debezium.team"),
    "debezium/kdp_debezium_postgres_customers_avro_as_json.json": json_values("raw.debezium.customers"),
    "salesforce/kdp_salesforce_cdc_contact_create_connect_json.json": json_values("raw.salesforce"),
    "salesforce/kdp_salesforce_platform_events_connect_json.jsonl": json_lines("raw.salesforce"),
    "salesforce/kdp_salesforce_pushtopic_lead_connect_json.json": json_values("raw.salesforce"),
    "salesforce/pozil_pubsub_account_change_event_update.json": json_values("raw.salesforce"),
    "zendesk/dust_zendesk_ticket_webhook_events.jsonl": json_lines("raw.zendesk"),
    "zendesk/kdp_zendesk_organization_record.json": json_values("raw.zendesk"),
    "zendesk/iglu_com.zendesk.snowplow_ticket_updated_1-0-0.schema.json": schema_only,
    "servicenow/kdp_servicenow_incident_connect_json.json": json_values(
        "raw.mapped", {"mapping": "servicenow_incident"}
    ),
    "wordpress/wp_rest_api_v2_fixture_posts_pages.json": each_member("raw.wordpress", lambda d: d),
    "erp/stripe_openapi_fixtures3_billing_subset.json": each_member("raw.stripe", lambda d: d["resources"]),
    "erp/sap_cap_chinook_Customers.csv": csv_rows("chinook_customer", ","),
    "erp/sap_cap_chinook_Invoices.csv": csv_rows("chinook_invoice", ","),
    "erp/sap_cap_chinook_InvoiceItems.csv": csv_rows("chinook_invoice_item", ","),
    "erp/sap_cap_orders_Orders.csv": csv_rows("sap_order", ";"),
    "erp/sap_cap_orders_Orders_Items.csv": csv_rows("sap_order_item", ";"),
    "erp/openui5_walkthrough_Invoices.json": json_values("raw.mapped", {"mapping": "openui5_invoice"}),
    **{
        f"hubspot/iglu_com.hubspot_{obj}_{action}_1-0-0.schema.json": schema_only
        for obj in ("contact", "company", "deal")
        for action in ("creation", "change", "deletion")
    },
}


@pytest.fixture(scope="module")
def cdc(shared_data: Path) -> Path:
    return shared_data / "cdc"


def test_every_shared_payload_file_is_planned(cdc: Path) -> None:
    present = {str(p.relative_to(cdc)) for p in cdc.rglob("*") if p.is_file()}
    assert present == set(PLAN), "a payload file was added or removed in shared/data/cdc: plan it here"


CONNECTORS: dict[str, Connector] = {
    "debezium/kdp_debezium_mysql_team_avro_as_json.json": DebeziumConnector(tables={"team": "customer"}),
}
"""Files whose tables the default connectors do not know, with a connector configured for them."""


@pytest.mark.parametrize("name", sorted(PLAN))
def test_shared_payload_goes_through_its_connector(cdc: Path, name: str) -> None:
    produced = 0
    for family, raw in PLAN[name](cdc / name):
        produced += len(valid(CONNECTORS.get(name, connector_for(family)).parse(raw)))
    if PLAN[name] is not schema_only:
        assert produced > 0, name


def test_copied_fixtures_are_byte_identical_to_shared_data(cdc: Path) -> None:
    copies = [p for p in FIXTURES.rglob("*") if p.is_file() and (cdc / p.relative_to(FIXTURES)).is_file()]
    assert len(copies) >= 20
    for copy in copies:
        assert copy.read_bytes() == (cdc / copy.relative_to(FIXTURES)).read_bytes(), copy
