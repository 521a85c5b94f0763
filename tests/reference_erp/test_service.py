"""The reference ERP on the real database and broker: a command applied once, refusals, Debezium change events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from connectors.base import RawMessage
from connectors.debezium import DebeziumConnector
from streamdesk.commands.models import Command, RowChange
from streamdesk.contracts import EntityEvent
from streamdesk.reference_erp import service

WORLD: dict[str, dict[str, dict[str, Any]]] = {
    "products": {},
    "users": {},
    "orders": {
        "#W1": {
            "order_id": "#W1",
            "user_id": "ann_lee_1",
            "status": "pending",
            "address": {},
            "fulfillments": [],
            "payment_history": [],
            "items": [],
        },
        "#W2": {
            "order_id": "#W2",
            "user_id": "ann_lee_1",
            "status": "delivered",
            "address": {},
            "fulfillments": [],
            "payment_history": [],
            "items": [],
        },
    },
}


@pytest.fixture
def erp(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The reference ERP's schema, fresh, seeded with two orders."""
    conn.execute("DROP SCHEMA IF EXISTS erp CASCADE")
    service.ensure_schema(conn)
    assert service.seed(conn, world=WORLD) == 2
    assert service.seed(conn, world=WORLD) == 0
    yield conn
    conn.execute("DROP SCHEMA IF EXISTS erp CASCADE")


def cancel(order_id: str, *, key: str) -> Command:
    change = RowChange(
        table="orders",
        entity_type="order",
        id=order_id,
        set={"status": "cancelled"},
        expect={"status": "pending", "cancel_reason": None},
    )
    return Command(
        idempotency_key=key, system="erp", tool="cancel", arguments={}, changes=[change], ticket_id="zendesk:1"
    )


def log(conn: psycopg.Connection) -> list[tuple[str, bytes, bytes]]:
    return [
        (t, bytes(k), bytes(v)) for t, k, v in conn.execute("SELECT topic, key, value FROM erp.change_log ORDER BY lsn")
    ]


def test_a_command_applies_once_as_a_debezium_update_the_connector_reads(erp: psycopg.Connection) -> None:
    assert service.apply(erp, command=cancel("#W1", key="k1")) == "applied"
    assert service.apply(erp, command=cancel("#W1", key="k1")) == "duplicate"
    [(topic, key, value)] = log(erp)
    assert topic == "raw.debezium.orders" and json.loads(key) == {"id": "#W1"}
    message = RawMessage(topic=topic, key=key, value=value)
    [event] = DebeziumConnector(source="debezium").parse(message)
    assert isinstance(event, EntityEvent) and event.version[0] > service.FIRST_LSN - 1
    assert event.attributes["status"] == "cancelled" and event.attributes["command_key"] == "k1"


def test_a_row_that_no_longer_holds_the_expected_values_refuses_the_command(erp: psycopg.Connection) -> None:
    assert service.apply(erp, command=cancel("#W2", key="k2")) == "rejected"
    [(topic, key, value)] = log(erp)
    outcome = json.loads(value)
    assert topic == "command.outcome" and key == b"k2" and outcome["status"] == "rejected"
    assert outcome["reason"] == 'orders row #W2 has status "delivered", not "pending"'
    row = erp.execute("SELECT row->>'status' FROM erp.orders WHERE id = '#W2'").fetchone()
    assert row == ("delivered",)
    assert service.apply(erp, command=cancel("#W9", key="k3")) == "rejected"
