"""Declarative mappings: ServiceNow, SAP CAP (Chinook, orders), OpenUI5 and knowledge articles."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.exceptions import MappingError
from connectors.mapped import MappedConnector
from connectors.mapping import MAPPINGS_DIR, load_mapping
from streamdesk.contracts import Access, DocumentEvent, EntityEvent, TicketEvent
from tests.connectors.helpers import fixture, load, message, raw_valid, valid

TOPIC = "raw.mapped"


@pytest.fixture
def connector() -> MappedConnector:
    return MappedConnector()


def parse(connector: MappedConnector, mapping: str, value: Any, **kwargs: Any) -> list:
    if not isinstance(value, bytes):
        raw_valid("mapped", value)
    return valid(connector.parse(message(TOPIC, value, headers={"mapping": mapping}, **kwargs)))


def csv_rows(path: Path, delimiter: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=delimiter))


def test_every_shipped_mapping_loads() -> None:
    names = sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
    assert {"kb_article", "servicenow_incident", "chinook_customer", "openui5_invoice"} <= set(names)
    for name in names:
        assert load_mapping(name).name == name


def test_servicenow_incident_becomes_a_ticket(connector: MappedConnector) -> None:
    raw = fixture("servicenow", "kdp_servicenow_incident_connect_json.json").read_bytes()
    raw_valid("mapped", json.loads(raw))
    [ticket] = parse(connector, "servicenow_incident", raw)
    assert isinstance(ticket, TicketEvent)
    assert (ticket.source, ticket.ticket_id, ticket.event_type) == (
        "servicenow",
        "fba48173db6600107b7e5385ca96197e",
        "created",
    )
    assert (ticket.subject, ticket.status, ticket.priority, ticket.assignee_id) == (
        "This is test",
        "new",
        "planning",
        None,
    )
    assert ticket.version == [1580479964000, 0]
    assert ticket.metadata["number"] == "INC0010003"
    assert ticket.metadata["opened_by"] == "6816f79cc0a8016401c5a33be04be441"
    record = json.loads(raw)["payload"]
    record.update(sys_mod_count="3", sys_updated_on="2020-02-01 09:00:00", state="2", sys_tags="vip, billing")
    record["assigned_to"] = {"link": "https://x/sys_user/abc", "value": "abc"}
    [update] = parse(connector, "servicenow_incident", record)
    assert (update.event_type, update.status, update.assignee_id, update.tags) == (
        "updated",
        "in_progress",
        "abc",
        ["vip", "billing"],
    )
    assert update.version > ticket.version


def test_chinook_rows(connector: MappedConnector, shared_data: Path) -> None:
    erp = shared_data / "cdc" / "erp"
    plans = [
        ("sap_cap_chinook_Customers.csv", "chinook_customer", "customer", 59),
        ("sap_cap_chinook_Invoices.csv", "chinook_invoice", "invoice", 412),
        ("sap_cap_chinook_InvoiceItems.csv", "chinook_invoice_item", "order_item", 2238),
    ]
    for name, mapping, entity_type, count in plans:
        events = []
        for offset, row in enumerate(csv_rows(erp / name, ",")):
            events += parse(connector, mapping, row, offset=offset)
        assert len(events) == count, name
        assert {e.entity_type for e in events} == {entity_type}
        assert len({e.external_id for e in events}) == count
    customer = parse(connector, "chinook_customer", csv_rows(erp / "sap_cap_chinook_Customers.csv", ",")[0])[0]
    assert customer.attributes["email"] == "luisg@embraer.com.br"
    assert customer.attributes["name"] == "Luís Gonçalves"
    assert customer.attributes["address"]["country"] == "Brazil"
    assert "password" not in customer.attributes
    invoice = parse(connector, "chinook_invoice", csv_rows(erp / "sap_cap_chinook_Invoices.csv", ",")[0])[0]
    assert (invoice.attributes["customer_id"], invoice.attributes["total"]) == ("2", 1.98)
    item = parse(connector, "chinook_invoice_item", csv_rows(erp / "sap_cap_chinook_InvoiceItems.csv", ",")[0])[0]
    assert (item.attributes["order_id"], item.attributes["quantity"], item.attributes["price"]) == ("1", 1, 0.99)


def test_sap_cap_orders_and_items(connector: MappedConnector) -> None:
    orders = [
        parse(connector, "sap_order", row)[0] for row in csv_rows(fixture("erp", "sap_cap_orders_Orders.csv"), ";")
    ]
    items = [
        parse(connector, "sap_order_item", row)[0]
        for row in csv_rows(fixture("erp", "sap_cap_orders_Orders_Items.csv"), ";")
    ]
    assert [o.attributes["order_no"] for o in orders] == [1, 2]
    assert orders[0].attributes["customer_id"] == "john.doe@test.com"
    assert orders[0].attributes["currency"] == "EUR"
    order_ids = {o.external_id for o in orders}
    assert {i.attributes["order_id"] for i in items} <= order_ids
    assert items[2].attributes["quantity"] == 2 and items[0].attributes["price"] == 11.11


def test_openui5_invoices_array(connector: MappedConnector) -> None:
    events = parse(connector, "openui5_invoice", fixture("erp", "openui5_walkthrough_Invoices.json").read_bytes())
    assert len(events) == 5
    first = events[0]
    assert isinstance(first, EntityEvent)
    assert first.external_id == "Pineapple|Fun Inc.|2015-04-01T00:00:00"
    assert (first.attributes["total"], first.attributes["status"], first.version) == (87.2, "A", [1427846400000])


def test_kb_articles_from_the_tau2_policy_and_banking_corpus(connector: MappedConnector, shared_data: Path) -> None:
    policy = (shared_data / "taubench" / "tau2_retail_policy.md").read_text()
    [doc] = parse(connector, "kb_article", {"id": "tau2-retail-policy", "title": "Retail agent policy", "text": policy})
    assert isinstance(doc, DocumentEvent)
    assert (doc.source, doc.external_id, doc.access, doc.doc_type) == (
        "kb",
        "tau2-retail-policy",
        Access(level="public"),
        "kb_article",
    )
    assert doc.body == policy
    assert doc.version == [1_700_000_000_000]  # no updated_at: the Kafka timestamp
    corpus = shared_data / "retrieval" / "tau2_banking_knowledge" / "corpus.jsonl"
    for line in corpus.read_text().splitlines()[:25]:
        record = json.loads(line)
        article = {"id": record["_id"], "title": record["title"], "text": record["text"], "access": "internal"}
        [doc] = parse(connector, "kb_article", article)
        assert doc.access.level == "internal" and doc.body == record["text"]


def test_kb_article_fields(connector: MappedConnector) -> None:
    article = {
        "id": 17,
        "title": "Refund policy",
        "text": "Refunds take 5 days.",
        "url": "https://help.example.com/refunds",
        "groups": ["billing"],
        "updated_at": "2026-11-01T10:00:00Z",
        "language": "en",
    }
    [doc] = parse(connector, "kb_article", article)
    assert (doc.external_id, doc.url, doc.language) == ("17", "https://help.example.com/refunds", "en")
    assert doc.access == Access(level="restricted", groups=["billing"])
    assert doc.version == [1793527200000]
    assert doc.event_id == "kb:kb_article:17:1793527200000"
    [gone] = parse(connector, "kb_article", {"id": 17, "deleted": True, "updated_at": "2026-11-02T10:00:00Z"})
    assert (gone.op, gone.body) == ("delete", "")
    with pytest.raises(ConnectorError, match="not an access level"):
        parse(connector, "kb_article", {**article, "access": "everyone"})


def test_missing_header_and_unknown_mapping(connector: MappedConnector) -> None:
    with pytest.raises(MappingError, match="no 'mapping' header"):
        connector.parse(message(TOPIC, {"id": 1}))
    with pytest.raises(MappingError, match=r"no mapping 'nope'.*kb_article"):
        connector.parse(message(TOPIC, {"id": 1}, headers={"mapping": "nope"}))
    with pytest.raises(MappingError, match="invalid"):
        connector.parse(message(TOPIC, {"id": 1}, headers={"mapping": "../etc/passwd"}))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"title": "no id"}, "id path 'id' is missing"),
        ({"id": {"nested": 1}, "title": "x"}, "not a scalar"),
        ({"id": 1, "updated_at": "soon"}, "not an ISO-8601"),
        ({"id": 1, "title": {"a": 1}}, "title must be text"),
        ([{"id": 1}, 5], "record #1 must be a JSON object"),
    ],
)
def test_unusable_records_are_errors(connector: MappedConnector, value: Any, match: str) -> None:
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(TOPIC, value, headers={"mapping": "kb_article"}))


def write(directory: Path, name: str, text: str) -> MappedConnector:
    (directory / f"{name}.yaml").write_text(text)
    return MappedConnector(directory=directory)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: m\nkind: document\nsource: s\nid: id\nversion: []\n", "version"),
        ("name: m\nkind: entity\nsource: s\nid: id\nversion: [v]\n", "needs entity_type"),
        (
            "name: m\nkind: document\nsource: s\nid: {path: id, transform: shout}\nversion: [v]\n",
            "unknown transform 'shout'",
        ),
        ("name: m\nkind: document\nsource: s\nid: {path: id, const: 1}\nversion: [v]\n", "exactly one of"),
        ("name: m\nkind: document\nsource: s\nid: id\nversion: [v]\nfields: {subject: s}\n", "not document fields"),
        ("name: m\nkind: ticket\nsource: s\nid: id\nversion: [v]\n", "needs event_type"),
        ("name: other\nkind: document\nsource: s\nid: id\nversion: [v]\n", "declares name 'other'"),
        ("name: m\nkind: [\n", "not valid YAML"),
    ],
)
def test_invalid_mapping_files_are_named(tmp_path: Path, text: str, match: str) -> None:
    connector = write(tmp_path, "m", text)
    with pytest.raises(MappingError, match=match):
        connector.parse(message(TOPIC, {"id": 1, "v": 1}, headers={"mapping": "m"}))


def test_paths_constants_transforms_and_kafka_fields(tmp_path: Path) -> None:
    connector = write(
        tmp_path,
        "lines",
        """
name: lines
kind: entity
entity_type: order_item
source: shop
record: data.lines
id: {paths: [$header.order, $index], transform: join, sep: "-"}
version: [$kafka.offset, {path: rev, default: 0}]
occurred_at: {path: at, transform: epoch_ms_to_iso}
op: {path: state, map: {removed: delete}, default: upsert}
fields:
  order_id: $header.order
  product_id: sku.codes[0]
  quantity: {path: qty, transform: int}
  price: {path: cents, transform: float}
  label: {path: label, transform: [html_to_text, upper]}
  channel: {const: web}
  flag: {path: gift, transform: bool}
""",
    )
    value = {
        "data": {
            "lines": [
                {
                    "sku": {"codes": ["A1", "A2"]},
                    "qty": "2",
                    "cents": "150",
                    "label": "<b>Tea</b> &amp; cake",
                    "at": 1_600_000_000_000,
                    "gift": "yes",
                },
                {"sku": {"codes": []}, "qty": 1, "state": "removed"},
            ]
        }
    }
    events = valid(connector.parse(message(TOPIC, value, headers={"mapping": "lines", "order": "o9"}, offset=8)))
    first, second = events
    assert isinstance(first, EntityEvent) and isinstance(second, EntityEvent)
    assert (first.external_id, second.external_id) == ("o9-0", "o9-1")
    assert first.version == [8, 0]
    assert first.attributes == {
        "order_id": "o9",
        "product_id": "A1",
        "quantity": 2,
        "price": 150.0,
        "label": "TEA & CAKE",
        "channel": "web",
        "flag": True,
    }
    assert first.occurred_at.year == 2020
    assert (second.op, second.attributes) == ("delete", {})


def test_transform_failures_name_the_field(tmp_path: Path) -> None:
    connector = write(
        tmp_path,
        "m",
        "name: m\nkind: entity\nentity_type: product\nsource: s\nid: id\nversion: [v]\n"
        "fields:\n  price: {path: p, transform: float}\n",
    )
    with pytest.raises(ConnectorError, match="field 'price': transform 'float' failed"):
        connector.parse(message(TOPIC, {"id": 1, "v": 1, "p": "cheap"}, headers={"mapping": "m"}))
    with pytest.raises(ConnectorError, match="version path 'v'"):
        connector.parse(message(TOPIC, {"id": 1, "v": "new"}, headers={"mapping": "m"}))


def test_ticket_event_type_must_be_canonical(tmp_path: Path) -> None:
    connector = write(tmp_path, "t", "name: t\nkind: ticket\nsource: s\nid: id\nversion: [v]\nevent_type: kind\n")
    with pytest.raises(ConnectorError, match="event_type 'exploded' is not a ticket event type"):
        connector.parse(message(TOPIC, {"id": 1, "v": 1, "kind": "exploded"}, headers={"mapping": "t"}))
    op_map = write(tmp_path, "o", "name: o\nkind: document\nsource: s\nid: id\nversion: [v]\nop: state\n")
    with pytest.raises(ConnectorError, match="op evaluated to 'gone'"):
        op_map.parse(message(TOPIC, {"id": 1, "v": 1, "state": "gone"}, headers={"mapping": "o"}))


def test_servicenow_fixture_raw_envelope_matches_shared_copy() -> None:
    assert load("servicenow", "kdp_servicenow_incident_connect_json.json")["payload"]["number"] == "INC0010003"
