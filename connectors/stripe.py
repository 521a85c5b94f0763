"""Stripe API objects and `event` objects (webhooks) for billing: customers, invoices, payments, products.

Mapping decisions:
- customer -> customer; a deleted customer (``deleted: true`` or ``customer.deleted``) -> delete.
- invoice -> invoice; invoiceitem -> order_item (``invoice_id`` names its invoice).
- subscription -> order (a recurring order; canceled ones stay, with their status).
- product -> product; price/plan -> partial update of their product (price, currency, price_id).
- charge, payment_intent, refund, credit_note, dispute that carry an invoice id -> partial update of that
  invoice with ``<object>_id``, ``<object>_status``, ``<object>_amount`` attributes.
- without an invoice: charge and payment_intent -> their own order (a one-off purchase); refund and dispute
  -> partial update of the order of the charge (or payment intent) they reverse.
Amounts are kept in Stripe's minor units under their own names; ``total``/``price`` are in major units.
Version: [event time (objects: updated, created or date; deleted stubs: the Kafka timestamp) in ms, Kafka
offset]; the offset orders same-second changes of one object, which share a key and so a partition.
"""

from __future__ import annotations

from typing import Any

from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.entities import canonical_attributes
from connectors.guard import guarded
from connectors.times import from_epoch_ms
from connectors.versions import to_int, version_tag
from connectors.wire import as_object, ref_id
from streamdesk.contracts import CanonicalEvent, EntityEvent, EntityType

ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf"} | {"xof", "xpf"}
)
PAYMENTS = frozenset({"charge", "payment_intent", "refund", "credit_note", "dispute"})
OWN: dict[str, EntityType] = {
    "customer": "customer",
    "invoice": "invoice",
    "invoiceitem": "order_item",
    "subscription": "order",
    "product": "product",
}
PRICES = frozenset({"price", "plan"})
DELETABLE = frozenset({"customer", "invoice", "product", "invoiceitem"})


def major(amount: Any, currency: Any) -> float | int | None:
    """A minor-unit amount in major units (1000 usd -> 10.0; 1000 jpy -> 1000)."""
    if amount is None:
        return None
    value = to_int(amount, what="Stripe amount")
    return value if str(currency or "").lower() in ZERO_DECIMAL else value / 100


class StripeConnector(Connector):
    """Stripe objects and events -> EntityEvents (see the module docstring for the mapping)."""

    family = "stripe"

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """One EntityEvent for a Stripe object or event."""
        body = decode_json(message.value)
        if not isinstance(body, dict) or not isinstance(body.get("object"), str):
            raise ConnectorError("Stripe payload must be a JSON object with an 'object' type field")
        event_type: str | None = None
        if body["object"] == "event":
            event_type = body.get("type")
            obj = as_object(body.get("data")).get("object")
            if not isinstance(event_type, str) or not isinstance(obj, dict):
                raise ConnectorError(f"Stripe event {body.get('id')!r} lacks 'type' or 'data.object'")
            stamp = body.get("created")
        else:
            obj = body
            stamp = body.get("updated") or body.get("created") or body.get("date")
        kind = obj.get("object")
        object_id = obj.get("id")
        if not isinstance(object_id, str) or not object_id:
            raise ConnectorError(f"Stripe {kind!r} object has no id")
        if stamp is not None:
            ms = to_int(stamp, what=f"Stripe {kind} created") * 1000
        elif message.timestamp_ms is not None:
            ms = message.timestamp_ms
        else:
            raise ConnectorError(f"Stripe {kind} {object_id} has no 'created' time and the message no timestamp")
        version = [ms, message.offset]
        if event_type is not None:
            event_id = f"stripe:{body.get('id')}"
        else:
            event_id = f"stripe:{kind}:{object_id}:{version_tag(version)}"
        deleted = obj.get("deleted") is True or (event_type or "").endswith(".deleted")
        target = self._target(str(kind), obj, deleted=deleted, event_type=event_type)
        entity_type, external_id, op, partial, attributes = target
        return [
            EntityEvent(
                event_id=event_id,
                source=self.source,
                entity_type=entity_type,
                external_id=external_id,
                op=op,
                version=version,
                occurred_at=from_epoch_ms(ms),
                partial=partial,
                attributes=canonical_attributes(entity_type, attributes) if attributes else {},
                tenant=self.tenant,
            )
        ]

    def _target(
        self, kind: str, obj: dict[str, Any], *, deleted: bool, event_type: str | None
    ) -> tuple[EntityType, str, Any, bool, dict[str, Any]]:
        object_id = str(obj["id"])
        currency = obj.get("currency")
        if kind in OWN:
            entity_type = OWN[kind]
            if deleted and kind in DELETABLE:
                return entity_type, object_id, "delete", False, {}
            return entity_type, object_id, "upsert", False, _own_attributes(kind, obj)
        if kind in PRICES:
            product = ref_id(obj.get("product"))
            if product is None:
                raise ConnectorError(f"Stripe {kind} {object_id} names no product")
            amount = obj.get("unit_amount") if kind == "price" else obj.get("amount")
            attributes: dict[str, Any] = {
                "price_id": object_id,
                "currency": currency,
                "price_active": False if deleted else obj.get("active"),
            }
            if amount is not None:
                attributes["price"] = major(amount, currency)
            return "product", product, "upsert", True, attributes
        if kind in PAYMENTS:
            return _payment(kind, obj)
        raise ConnectorError(
            f"unsupported Stripe object {kind!r}{f' (event {event_type})' if event_type else ''}; supported: "
            f"{', '.join(sorted({*OWN, *PRICES, *PAYMENTS}))}"
        )


def _own_attributes(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    attributes = dict(obj)
    currency = obj.get("currency")
    if kind == "customer":
        attributes.setdefault("address", obj.get("address"))
    elif kind == "invoice":
        attributes["customer_id"] = ref_id(obj.get("customer"))
        attributes["total"] = major(obj.get("total", obj.get("amount_due")), currency)
    elif kind == "invoiceitem":
        price = as_object(obj.get("price"))
        attributes["invoice_id"] = ref_id(obj.get("invoice"))
        attributes["product_id"] = ref_id(price.get("product"))
        attributes["price"] = major(obj.get("amount"), currency)
    elif kind == "subscription":
        attributes["customer_id"] = ref_id(obj.get("customer"))
        attributes["items"] = [
            {
                "id": item.get("id"),
                "price_id": ref_id(item.get("price")),
                "product_id": ref_id(as_object(item.get("price")).get("product")),
                "quantity": item.get("quantity"),
            }
            for item in as_object(obj.get("items")).get("data") or []
            if isinstance(item, dict)
        ]
    return attributes


def _payment(kind: str, obj: dict[str, Any]) -> tuple[EntityType, str, Any, bool, dict[str, Any]]:
    object_id = str(obj["id"])
    currency = obj.get("currency")
    invoice = ref_id(obj.get("invoice"))
    summary = {
        f"{kind}_id": object_id,
        f"{kind}_status": obj.get("status"),
        f"{kind}_amount": major(obj.get("amount"), currency),
    }
    if kind == "charge":
        summary["amount_refunded"] = major(obj.get("amount_refunded"), currency)
    if kind == "dispute":
        summary["dispute_reason"] = obj.get("reason")
    if invoice is not None:
        return "invoice", invoice, "upsert", True, summary
    if kind in {"charge", "payment_intent"}:
        attributes = dict(obj)
        attributes["customer_id"] = ref_id(obj.get("customer"))
        attributes["total"] = major(obj.get("amount"), currency)
        attributes["payment_kind"] = kind
        return "order", object_id, "upsert", False, attributes
    if kind in {"refund", "dispute"}:
        parent = ref_id(obj.get("charge")) or ref_id(obj.get("payment_intent"))
        if parent is None:
            raise ConnectorError(f"Stripe {kind} {object_id} names neither a charge nor a payment_intent")
        return "order", parent, "upsert", True, summary
    raise ConnectorError(f"Stripe {kind} {object_id} names no invoice; it cannot be attached to one")
