"""The τ²-bench retail world becomes a Debezium snapshot of customers, orders, order items and products."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from streamdesk.seed import taubench
from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.wire import DebeziumLog


@pytest.fixture(scope="module")
def world(shared_data: Path) -> taubench.World:
    return taubench.load_world(path=shared_data / taubench.DB_FILE)


def test_the_whole_world_is_one_snapshot_with_increasing_lsns(world: taubench.World) -> None:
    records = list(taubench.snapshot_records(world=world, log=DebeziumLog()))
    values = [json.loads(r.value or b"") for r in records]
    assert Counter(r.topic for r in records) == {
        "raw.debezium.products": 50,
        "raw.debezium.customers": 500,
        "raw.debezium.orders": 1000,
        "raw.debezium.order_items": 2978,
    }
    assert {v["op"] for v in values} == {"r"}
    lsns = [v["source"]["lsn"] for v in values]
    assert all(a < b for a, b in itertools.pairwise(lsns))
    item_ids = [v["after"]["id"] for v in values if v["source"]["table"] == "order_items"]
    assert len(item_ids) == len(set(item_ids))


def test_rows_keep_what_the_agent_looks_up(world: taubench.World) -> None:
    user = world["users"]["noah_brown_6181"]
    customer = taubench.customer_row(user)
    assert customer["id"] == "noah_brown_6181"
    assert customer["address"]["zip"] == "80279"
    assert customer["payment_methods"]["paypal_5727330"]["source"] == "paypal"
    order = world["orders"]["#W2611340"]
    row = taubench.order_row(order)
    assert row["user_id"] == row["customer_id"] == "james_li_5688"
    assert row["total"] == 536.65 == order["payment_history"][0]["amount"]
    items = taubench.order_item_rows(order)
    assert [i["id"] for i in items] == ["#W2611340:6469567736", "#W2611340:8426249116"]
    assert items[1]["options"]["armrest"] == "fixed"
    assert "9612497925" in taubench.product_row(world["products"]["9523456873"])["variants"]


def test_repeated_items_in_one_order_get_distinct_ids() -> None:
    item = {"item_id": "1", "product_id": "p", "name": "Lamp", "price": 2.5, "options": {}}
    rows = taubench.order_item_rows({"order_id": "#W1", "items": [item, item]})
    assert [r["id"] for r in rows] == ["#W1:1", "#W1:1:2"]
    assert [r["line"] for r in rows] == [1, 2]


def test_json_columns_can_travel_as_strings_like_debezium_sends_them(world: taubench.World) -> None:
    record = next(taubench.snapshot_records(world=world, log=DebeziumLog(), limit=1, json_columns="string"))
    after = json.loads(record.value or b"")["after"]
    assert isinstance(after["variants"], str)
    assert json.loads(after["variants"]) == next(iter(world["products"].values()))["variants"]
    with pytest.raises(SeedError, match="json_columns='yaml'"):
        taubench.encode_json_columns("products", after, json_columns="yaml")  # type: ignore[arg-type]


def test_limit_caps_each_collection_and_keeps_the_orders_items(world: taubench.World) -> None:
    tables = Counter(table for table, _ in taubench.table_rows(world, limit=3))
    items = sum(len(order["items"]) for order in list(world["orders"].values())[:3])
    assert tables == {"products": 3, "customers": 3, "orders": 3, "order_items": items}


def test_a_missing_db_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="not found"):
        taubench.load_world(path=tmp_path / "db.json")
