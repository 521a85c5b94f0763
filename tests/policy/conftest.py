"""Policy fixtures: the clean database with two customers' orders in the entity store, principals per role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from streamdesk import db
from streamdesk.identity.models import Principal, Role, agent_for_customer

CUSTOMER = "mei_davis_8935"
OTHER_CUSTOMER = "mei_kovacs_8020"
ORDER = "#W2890441"
OTHER_ORDER = "#W6390527"
TICKET = "T-100"

ORDER_RESULT: dict[str, Any] = {
    "order_id": ORDER,
    "user_id": CUSTOMER,
    "status": "delivered",
    "items": [{"item_id": "2366567022", "product_id": "8310926033", "price": 54.04}],
    "payment_history": [{"transaction_type": "payment", "amount": 930.46, "payment_method_id": "credit_card_1061405"}],
}
USER_RESULT: dict[str, Any] = {
    "user_id": CUSTOMER,
    "payment_methods": {"credit_card_1061405": {"source": "credit_card"}},
    "orders": [ORDER],
}
PRODUCT_RESULT: dict[str, Any] = {
    "product_id": "8310926033",
    "variants": {"1434748144": {"price": 49.72, "available": True}},
}
TRUSTED: list[Any] = [ORDER_RESULT, USER_RESULT, PRODUCT_RESULT, TICKET]


def principal_for(role: Role, *, tenant: str = "default", name: str | None = None) -> Principal:
    """A person holding `role`, or the agent identity acting for CUSTOMER when the role is service_agent."""
    if role is Role.SERVICE_AGENT:
        return agent_for_customer(CUSTOMER, tenant=tenant)
    return Principal(kind="user", id=name or f"{role.value}-1", roles=frozenset({role}), tenant=tenant)


def put_order(conn: psycopg.Connection, order_id: str, customer_id: str, *, tenant: str = "default") -> None:
    """An order row in the entity store, as the ingest worker would write it."""
    conn.execute(
        "INSERT INTO entities (entity_type, source, external_id, version, event_id, attributes, tenant) "
        "VALUES ('order', 'erp', %s, '{1}', %s, %s, %s)",
        (order_id, f"evt-{order_id}", json.dumps({"customer_id": customer_id, "user_id": customer_id}), tenant),
    )


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the emptied database holding one order of each customer."""
    with db.connect(clean_db, autocommit=True) as connection:
        put_order(connection, ORDER, CUSTOMER)
        put_order(connection, OTHER_ORDER, OTHER_CUSTOMER)
        yield connection
