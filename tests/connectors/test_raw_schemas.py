"""The raw envelope schemas accept the vendors' real wire shapes and reject obvious garbage."""

from __future__ import annotations

from typing import Any

import pytest

from streamdesk.exceptions import ContractError
from tests.connectors.helpers import lines, load, raw_valid

GOOD: list[tuple[str, Any]] = [
    ("debezium", {"id": 1, "name": "flat row"}),
    ("debezium", {"schema": None, "payload": {"op": "d", "before": {"id": 1}, "after": None, "source": {}}}),
    ("debezium", {"op": "t", "source": {"table": "customers"}}),
    ("hubspot", [{"subscriptionType": "contact.creation", "objectId": 1, "eventId": 2, "occurredAt": 3}]),
    ("zendesk", {"type": "zen:event-type:ticket.created", "id": "e", "detail": {}}),
    ("wordpress", [{"id": 1, "modified_gmt": "2017-02-14T00:00:00"}]),
    ("contentful", {"sys": {"id": "x", "type": "DeletedEntry"}}),
    ("stripe", {"object": "customer", "id": "cus_1"}),
    ("mapped", [{"id": 1}]),
]
BAD: list[tuple[str, Any]] = [
    ("debezium", [1, 2]),
    ("debezium", "text"),
    ("debezium", {}),
    ("debezium", {"op": "x", "source": {}}),
    ("debezium", {"op": "c", "source": {}, "after": "not-a-row"}),
    ("debezium", {"op": "c", "source": {}}),
    ("debezium", {"before": None, "after": None}),
    ("salesforce", {"payload": {"ChangeEventHeader": {"changeType": "CREATE"}}}),
    ("salesforce", ["x"]),
    ("hubspot", []),
    ("hubspot", [{"subscriptionType": "contact", "objectId": 1, "eventId": 2, "occurredAt": 3}]),
    ("hubspot", {"objectId": 1}),
    ("zendesk", {"type": "ticket.created", "id": "e", "detail": {}}),
    ("zendesk", {"id": 1}),
    ("wordpress", {"id": "four", "modified_gmt": "x"}),
    ("wordpress", [{"title": "no id"}]),
    ("contentful", {"sys": {"id": "x", "type": "Asset"}}),
    ("contentful", {"fields": {}}),
    ("stripe", {"object": "event", "id": "evt_1", "type": "x"}),
    ("stripe", {"id": "x"}),
    ("mapped", "text"),
    ("mapped", {}),
]


@pytest.mark.parametrize(("family", "value"), GOOD)
def test_accepts(family: str, value: Any) -> None:
    raw_valid(family, value)


@pytest.mark.parametrize(("family", "value"), BAD)
def test_rejects(family: str, value: Any) -> None:
    with pytest.raises(ContractError, match=rf"raw/{family}\.v1\.json"):
        raw_valid(family, value)


def test_copied_vendor_fixtures_validate() -> None:
    for name in (
        "kdp_salesforce_cdc_contact_create_connect_json.json",
        "kdp_salesforce_pushtopic_lead_connect_json.json",
        "pozil_pubsub_account_change_event_update.json",
    ):
        raw_valid("salesforce", load("salesforce", name))
    for record in lines("zendesk", "dust_zendesk_ticket_webhook_events.jsonl"):
        raw_valid("zendesk", record)
    raw_valid("zendesk", load("zendesk", "kdp_zendesk_organization_record.json"))
    for obj in load("erp", "stripe_openapi_fixtures3_billing_subset.json")["resources"].values():
        raw_valid("stripe", obj)
    raw_valid("mapped", load("servicenow", "kdp_servicenow_incident_connect_json.json"))
    raw_valid("mapped", load("erp", "openui5_walkthrough_Invoices.json"))
    raw_valid("hubspot", load("hubspot", "webhook_batch.json"))
