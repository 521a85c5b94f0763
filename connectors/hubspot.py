"""HubSpot webhook bodies: a JSON array of events (or one event) for contacts, companies and deals."""

from __future__ import annotations

from typing import Any

from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.entities import canonical_attributes
from connectors.guard import guarded
from connectors.times import from_epoch_ms, time_ms
from connectors.versions import to_int
from streamdesk.contracts import CanonicalEvent, EntityEvent, EntityType

OBJECTS: dict[str, EntityType] = {
    "contact": "customer",
    "company": "customer",
    "deal": "order",
    "product": "product",
    "line_item": "order_item",
}
UPSERTS = frozenset({"creation", "restore", "propertyChange"})
DELETES = frozenset({"deletion", "privacyDeletion"})
# HubSpot property names -> canonical attribute names, per object
PROPERTIES: dict[str, dict[str, str]] = {
    "contact": {"email": "email", "firstname": "first_name", "lastname": "last_name", "phone": "phone"},
    "company": {"name": "name", "phone": "phone", "address": "address"},
    "deal": {"amount": "total", "dealstage": "status", "deal_currency_code": "currency"},
    "product": {"name": "name", "description": "description", "price": "price"},
    "line_item": {"quantity": "quantity", "price": "price", "hs_product_id": "product_id"},
}


class HubSpotConnector(Connector):
    """HubSpot webhook events -> EntityEvents (contact/company -> customer, deal -> order)."""

    family = "hubspot"

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """One EntityEvent per webhook event in the body."""
        body = decode_json(message.value)
        events = body if isinstance(body, list) else [body]
        return [self._event(event, index) for index, event in enumerate(events)]

    def _event(self, event: Any, index: int) -> EntityEvent:
        where = f"HubSpot event #{index}"
        if not isinstance(event, dict):
            raise ConnectorError(f"{where} must be a JSON object, got {type(event).__name__}")
        kind = event.get("subscriptionType")
        if not isinstance(kind, str) or "." not in kind:
            raise ConnectorError(f"{where} has no subscriptionType like 'contact.creation': {kind!r}")
        obj, action = kind.split(".", 1)
        if obj not in OBJECTS or action not in UPSERTS | DELETES:
            raise ConnectorError(
                f"unsupported HubSpot subscriptionType {kind!r}; supported objects "
                f"{', '.join(OBJECTS)} with {', '.join(sorted(UPSERTS | DELETES))}"
            )
        if event.get("objectId") in (None, ""):
            raise ConnectorError(f"{where} ({kind}) has no objectId")
        object_id = to_int(event["objectId"], what=f"{where} objectId")
        event_id = to_int(event.get("eventId"), what=f"{where} eventId")
        occurred_ms = time_ms(event.get("occurredAt"), what=f"{where} occurredAt")
        version = [occurred_ms, event_id]
        entity_type = OBJECTS[obj]
        attributes: dict[str, Any] = {}
        if action in UPSERTS:
            attributes = {"hubspot_object": obj}
            if obj == "company":
                attributes["kind"] = "organization"
            if action == "propertyChange":
                name = event.get("propertyName")
                if not isinstance(name, str) or not name:
                    raise ConnectorError(f"{where} ({kind}) has no propertyName")
                value = event.get("propertyValue")
                attributes[name] = value
                canonical = PROPERTIES[obj].get(name)
                if canonical:
                    attributes[canonical] = value
                attributes = canonical_attributes(entity_type, attributes)
        portal = event.get("portalId", "")
        return EntityEvent(
            event_id=f"hubspot:{portal}:{kind}:{object_id}:{event_id}:{event.get('propertyName') or ''}",
            source=self.source,
            entity_type=entity_type,
            external_id=f"{obj}:{object_id}",
            op="delete" if action in DELETES else "upsert",
            version=version,
            occurred_at=from_epoch_ms(occurred_ms),
            partial=action in UPSERTS,
            attributes=attributes,
            tenant=self.tenant,
        )
