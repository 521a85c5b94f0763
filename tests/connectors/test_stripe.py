"""Stripe objects and events -> EntityEvents."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.stripe import StripeConnector, major
from streamdesk.contracts import EntityEvent
from tests.connectors.helpers import load, message, only, raw_valid

TOPIC = "raw.stripe"


@pytest.fixture
def connector() -> StripeConnector:
    return StripeConnector()


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load("erp", "stripe_openapi_fixtures3_billing_subset.json")["resources"]


def entity(connector: StripeConnector, value: Any, offset: int = 3) -> EntityEvent:
    raw_valid("stripe", value)
    event = only(connector.parse(message(TOPIC, value, offset=offset)), EntityEvent)
    return event


def test_every_fixture_object_maps(connector: StripeConnector, resources: dict[str, Any]) -> None:
    targets = {name: entity(connector, obj) for name, obj in resources.items()}
    summary = {name: (e.entity_type, e.op, e.partial) for name, e in targets.items()}
    assert summary == {
        "customer": ("customer", "upsert", False),
        "deleted_customer": ("customer", "delete", False),
        "invoice": ("invoice", "upsert", False),
        "invoiceitem": ("order_item", "upsert", False),
        "charge": ("order", "upsert", False),
        "refund": ("order", "upsert", True),
        "payment_intent": ("order", "upsert", False),
        "credit_note": ("invoice", "upsert", True),
        "dispute": ("order", "upsert", True),
        "product": ("product", "upsert", False),
        "price": ("product", "upsert", True),
        "subscription": ("order", "upsert", False),
        "event": ("product", "upsert", True),
    }


def test_customer_and_its_deletion(connector: StripeConnector, resources: dict[str, Any]) -> None:
    customer = entity(connector, resources["customer"])
    assert customer.external_id == "cus_QXg1o8vcGmoR32"
    assert customer.version == [1234567890000, 3]
    assert customer.event_id == "stripe:customer:cus_QXg1o8vcGmoR32:1234567890000.3"
    deleted = entity(connector, resources["deleted_customer"], offset=4)
    assert (deleted.external_id, deleted.attributes) == ("cus_QXg1o8vcGmoR32", {})
    assert deleted.version == [1_700_000_000_000, 4]  # no created on the stub: the Kafka timestamp
    assert deleted.version > customer.version


def test_invoice_totals_are_in_major_units(connector: StripeConnector, resources: dict[str, Any]) -> None:
    invoice = entity(connector, resources["invoice"])
    assert invoice.attributes["customer_id"] == "cus_QXg1o8vcGmoR32"
    assert invoice.attributes["amount_due"] == 1000
    assert invoice.attributes["currency"] == "usd"
    assert invoice.attributes["total"] == major(resources["invoice"]["total"], "usd")


def test_refunds_and_disputes_update_the_order_of_their_charge(
    connector: StripeConnector, resources: dict[str, Any]
) -> None:
    charge = entity(connector, resources["charge"])
    refund = entity(connector, resources["refund"])
    dispute = entity(connector, resources["dispute"])
    assert charge.external_id == refund.external_id == dispute.external_id == "ch_1PgafuB7WZ01zgkWXYmPNZs8"
    assert charge.attributes["total"] == 1.0 and charge.attributes["payment_kind"] == "charge"
    assert refund.attributes == {
        "refund_id": "re_1Pgc72B7WZ01zgkWqPvrRrPE",
        "refund_status": "succeeded",
        "refund_amount": 1.0,
    }
    assert dispute.attributes["dispute_reason"] == "general"


def test_payments_with_an_invoice_update_that_invoice(connector: StripeConnector, resources: dict[str, Any]) -> None:
    credit = entity(connector, resources["credit_note"])
    assert (credit.entity_type, credit.external_id) == ("invoice", "in_1Pgc75B7WZ01zgkWYv4iMwt7")
    assert credit.attributes["credit_note_amount"] == 16.9
    charge = {**resources["charge"], "invoice": {"id": "in_9", "object": "invoice"}}
    paid = entity(connector, charge)
    assert (paid.entity_type, paid.external_id, paid.partial) == ("invoice", "in_9", True)
    assert paid.attributes["charge_status"] == "succeeded"


def test_prices_update_their_product(connector: StripeConnector, resources: dict[str, Any]) -> None:
    price = entity(connector, resources["price"])
    assert (price.external_id, price.attributes["price"], price.attributes["price_id"]) == (
        "prod_QXg1hqf4jFNsqG",
        20.0,
        "price_1PgafmB7WZ01zgkW6dKueIc5",
    )


def test_events_are_unwrapped_and_their_type_decides(connector: StripeConnector, resources: dict[str, Any]) -> None:
    plan = entity(connector, resources["event"])
    assert plan.event_id == "stripe:evt_1Pgc76B7WZ01zgkWwyRHS12y"
    assert plan.external_id == "prod_QXg1hqf4jFNsqG"
    event = {**resources["event"], "id": "evt_2", "type": "customer.deleted", "created": 1_700_000_001}
    event["data"] = {"object": resources["customer"]}
    deleted = entity(connector, event)
    assert (deleted.op, deleted.event_id, deleted.version) == ("delete", "stripe:evt_2", [1_700_000_001_000, 3])
    event["type"] = "customer.updated"
    assert entity(connector, event).op == "upsert"
    event["type"], event["data"] = "price.deleted", {"object": resources["price"]}
    assert entity(connector, event).attributes["price_active"] is False


def test_zero_decimal_currencies() -> None:
    assert major(1000, "jpy") == 1000 and major(1000, "USD") == 10.0 and major(None, "usd") is None


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"object": "payout", "id": "po_1", "created": 1}, "unsupported Stripe object 'payout'"),
        ({"object": "customer", "created": 1}, "has no id"),
        ({"object": "customer", "id": "cus_1", "created": "yesterday"}, "created must be an integer"),
        ({"object": "event", "id": "evt_1", "type": "x.y"}, "lacks 'type' or 'data.object'"),
        ({"object": "refund", "id": "re_1", "created": 1, "amount": 1}, "neither a charge nor a payment_intent"),
        ({"object": "price", "id": "price_1", "created": 1}, "names no product"),
        ({"id": "x"}, "'object' type field"),
    ],
)
def test_unusable_payloads_are_errors(connector: StripeConnector, value: dict[str, Any], match: str) -> None:
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(TOPIC, value))


def test_balance_events_are_unsupported(connector: StripeConnector, resources: dict[str, Any]) -> None:
    event = copy.deepcopy(resources["event"])
    event["type"], event["data"]["object"] = "balance.available", {"object": "balance", "id": "bal"}
    with pytest.raises(ConnectorError, match=r"balance\.available"):
        connector.parse(message(TOPIC, event))
