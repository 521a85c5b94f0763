"""The τ²-bench retail world (MIT) replayed as a Debezium snapshot of the ERP's tables.

Rows keep json/jsonb columns (address, payment_methods, fulfillments, payment_history, options,
variants) as nested JSON objects by default, so the entity store holds them as objects and the agent's
look-ups need no second parse. Real Debezium emits json/jsonb columns as JSON *strings*; pass
`json_columns="string"` to reproduce that wire form exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from streamdesk.seed.config import BUNDLED_DIR
from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.wire import DebeziumLog, RawRecord

DB_FILE = Path("taubench") / "tau2_retail_db.json"
TASKS_FILE = Path("taubench") / "tau2_retail_tasks.json"
SPLIT_FILE = Path("taubench") / "tau2_retail_split_tasks.json"
BUNDLED_DB = BUNDLED_DIR / "tau2_retail_db_mini.json"
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("address", "payment_methods"),
    "orders": ("address", "fulfillments", "payment_history"),
    "order_items": ("options",),
    "products": ("variants",),
}

JsonColumns = Literal["object", "string"]
World = dict[str, dict[str, dict[str, Any]]]


def world_path(*, shared_data: Path | None) -> Path:
    """The full retail DB under `shared_data` when it is there, else the bundled mini world."""
    if shared_data is not None and (shared_data / DB_FILE).is_file():
        return shared_data / DB_FILE
    return BUNDLED_DB


def load_world(*, path: Path) -> World:
    """Read a τ²-bench retail DB file (`{"products", "users", "orders"}`)."""
    try:
        world = json.loads(path.read_text())
    except FileNotFoundError:
        raise SeedError(f"retail DB {path} not found; pass shared_data pointing at shared/data") from None
    except json.JSONDecodeError as exc:
        raise SeedError(f"retail DB {path} is not valid JSON at char {exc.pos}: {exc.msg}") from exc
    missing = {"products", "users", "orders"} - set(world)
    if missing:
        raise SeedError(f"retail DB {path} lacks {sorted(missing)}; use tau2-bench's retail db.json")
    return world


def customer_row(user: Mapping[str, Any]) -> dict[str, Any]:
    """The `customers` row of a τ²-bench user."""
    return {
        "id": user["user_id"],
        "first_name": user["name"]["first_name"],
        "last_name": user["name"]["last_name"],
        "email": user["email"],
        "address": user["address"],
        "payment_methods": user["payment_methods"],
    }


def order_row(order: Mapping[str, Any]) -> dict[str, Any]:
    """The `orders` row of a τ²-bench order; `total` is the sum of its item prices."""
    return {
        "id": order["order_id"],
        "user_id": order["user_id"],
        "customer_id": order["user_id"],
        "status": order["status"],
        "address": order["address"],
        "fulfillments": order["fulfillments"],
        "payment_history": order["payment_history"],
        "total": round(sum(float(item["price"]) for item in order["items"]), 2),
    }


def order_item_rows(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `order_items` rows of an order: id `<order_id>:<item_id>`, `:<n>` added for repeats."""
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, item in enumerate(order["items"], start=1):
        seen[item["item_id"]] = count = seen.get(item["item_id"], 0) + 1
        suffix = "" if count == 1 else f":{count}"
        rows.append(
            {
                "id": f"{order['order_id']}:{item['item_id']}{suffix}",
                "order_id": order["order_id"],
                "line": line,
                "item_id": item["item_id"],
                "product_id": item["product_id"],
                "name": item["name"],
                "price": item["price"],
                "options": item["options"],
            }
        )
    return rows


def product_row(product: Mapping[str, Any]) -> dict[str, Any]:
    """The `products` row of a τ²-bench product; `variants` is keyed by item id."""
    return {"id": product["product_id"], "name": product["name"], "variants": product["variants"]}


def encode_json_columns(table: str, row: dict[str, Any], *, json_columns: JsonColumns) -> dict[str, Any]:
    """The row with its json columns as nested objects, or as JSON strings the way Debezium sends them."""
    if json_columns == "object":
        return row
    if json_columns != "string":
        raise SeedError(f"json_columns={json_columns!r} is not known; use 'object' or 'string'")
    return {name: json.dumps(value) if name in JSON_COLUMNS.get(table, ()) else value for name, value in row.items()}


def table_rows(world: World, *, limit: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(table, row)` in snapshot order: products, customers, orders, then the limited orders' items."""
    products = list(world["products"].values())[:limit]
    users = list(world["users"].values())[:limit]
    orders = list(world["orders"].values())[:limit]
    yield from (("products", product_row(p)) for p in products)
    yield from (("customers", customer_row(u)) for u in users)
    yield from (("orders", order_row(o)) for o in orders)
    for order in orders:
        yield from (("order_items", row) for row in order_item_rows(order))


def snapshot_records(
    *, world: World, log: DebeziumLog, limit: int | None = None, json_columns: JsonColumns = "object"
) -> Iterator[RawRecord]:
    """Debezium snapshot reads (`op: "r"`) of every table row; `limit` caps each source collection."""
    for table, row in table_rows(world, limit=limit):
        yield log.read(table, encode_json_columns(table, row, json_columns=json_columns))


def mini_world(*, world: World, tasks: list[dict[str, Any]], task_ids: list[str]) -> World:
    """Every product plus the users (and all their orders) that tasks `task_ids` act on."""
    by_id = {str(task["id"]): task for task in tasks}
    users: set[str] = set()
    for task_id in task_ids:
        for action in (by_id[task_id].get("evaluation_criteria") or {}).get("actions") or []:
            arguments = action.get("arguments") or {}
            if arguments.get("order_id") in world["orders"]:
                users.add(world["orders"][arguments["order_id"]]["user_id"])
            if arguments.get("user_id") in world["users"]:
                users.add(arguments["user_id"])
    orders = {
        order_id: world["orders"][order_id]
        for user_id in sorted(users)
        for order_id in world["users"][user_id]["orders"]
        if order_id in world["orders"]
    }
    return {
        "products": world["products"],
        "users": {user_id: world["users"][user_id] for user_id in sorted(users)},
        "orders": orders,
    }


def build_mini_world(*, shared_data: Path, test_tasks: int = 10) -> World:
    """The bundled mini world: the users of the first `test_tasks` tasks of the test split."""
    world = load_world(path=shared_data / DB_FILE)
    tasks = json.loads((shared_data / TASKS_FILE).read_text())
    split = json.loads((shared_data / SPLIT_FILE).read_text())
    return mini_world(world=world, tasks=tasks, task_ids=[str(t) for t in split["test"][:test_tasks]])
