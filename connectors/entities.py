"""Canonical entity attributes: the `entity.v1.json` $defs names, added next to the source's own columns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from connectors.base import ConnectorError
from streamdesk.contracts import EntityType

# canonical name -> source names that mean the same thing, first match wins
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "customer": {
        "email": ("Email", "email_address", "emailAddress", "EmailAddress", "customer_email"),
        "first_name": ("firstName", "FirstName", "firstname", "given_name"),
        "last_name": ("lastName", "LastName", "lastname", "family_name", "surname"),
        "name": ("Name", "full_name", "fullName", "company_name", "companyName"),
        "phone": ("Phone", "phone_number", "phoneNumber", "telephone", "mobile", "MobilePhone"),
        "address": ("Address", "BillingAddress", "MailingAddress", "billing_address", "shipping_address"),
    },
    "order": {
        "customer_id": ("user_id", "customer", "customerId", "customer_ID", "AccountId", "buyer"),
        "status": ("Status", "state", "order_status"),
        "total": ("TotalAmount", "total_amount", "amount", "grand_total", "totalAmount"),
        "currency": ("currency_code", "CurrencyIsoCode", "currencyCode"),
        "items": ("line_items", "lines", "order_items"),
    },
    "order_item": {
        "order_id": ("OrderId", "orderId", "order_ID", "up__ID", "invoice_ID", "invoice_id"),
        "product_id": ("Product2Id", "productId", "product_ID", "sku", "track_ID"),
        "quantity": ("Quantity", "qty", "quantity_ordered"),
        "price": ("UnitPrice", "unit_price", "unitPrice", "amount"),
    },
    "invoice": {
        "customer_id": ("user_id", "customer", "customerId", "customer_ID", "AccountId"),
        "status": ("Status", "state", "invoice_status"),
        "total": ("Total", "TotalAmount", "total_amount", "amount_due", "amount", "grand_total"),
        "currency": ("currency_code", "CurrencyIsoCode", "currencyCode"),
    },
    "product": {
        "name": ("Name", "title", "product_name", "productName", "ProductName"),
        "description": ("Description", "desc", "summary"),
        "price": ("UnitPrice", "unit_price", "unitPrice", "list_price", "amount"),
    },
}

_STRING = (str,)
_ID = (str, int)
_MONEY = (int, float, str)
# canonical name -> the JSON types entity.v1.json allows (besides null)
ALLOWED: dict[str, dict[str, tuple[type, ...]]] = {
    "customer": {
        "email": _STRING,
        "first_name": _STRING,
        "last_name": _STRING,
        "name": (str, dict),
        "phone": _STRING,
        "address": (dict, str),
    },
    "order": {"customer_id": _ID, "status": _STRING, "total": _MONEY, "currency": _STRING, "items": (list,)},
    "order_item": {"order_id": _ID, "product_id": _ID, "quantity": (int, float), "price": _MONEY},
    "invoice": {"customer_id": _ID, "status": _STRING, "total": _MONEY, "currency": _STRING},
    "product": {"name": _STRING, "description": _STRING, "price": _MONEY},
}


def _is_non_finite(value: Any) -> bool:
    """Whether `value` is a float or numeric text that is NaN or infinite (or too long for a float)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, float) and not math.isfinite(value)


def _conform(value: Any, allowed: tuple[type, ...], *, what: str) -> Any:
    if float in allowed and _is_non_finite(value):
        raise ConnectorError(f"{what} is {value!r:.40}, not a finite number; send a number or null")
    if value is None or (isinstance(value, allowed) and not isinstance(value, bool)):
        return value
    if (int in allowed or float in allowed) and str not in allowed:
        try:
            number = float(str(value))
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    if str in allowed:
        return str(value)
    return None


def canonical_attributes(entity_type: EntityType, row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` plus the canonical names of its type, filled from aliases and coerced to the schema's types."""
    attributes = dict(row)
    for name, sources in ALIASES[entity_type].items():
        if name not in attributes:
            for source in sources:
                if source in row:
                    attributes[name] = row[source]
                    break
    if entity_type == "customer" and attributes.get("name") is None:
        first, last = attributes.get("first_name"), attributes.get("last_name")
        if first and last:
            attributes["name"] = f"{first} {last}"
    for name, allowed in ALLOWED[entity_type].items():
        if name in attributes:
            attributes[name] = _conform(attributes[name], allowed, what=f"{entity_type} {name}")
    return attributes


def canonical_names(entity_type: EntityType, names: Iterable[str]) -> list[str]:
    """`names` plus the canonical names they stand for (for nulled or unchanged field lists)."""
    result = list(dict.fromkeys(names))
    for canonical, sources in ALIASES[entity_type].items():
        if canonical not in result and any(source in result for source in sources):
            result.append(canonical)
    return result
