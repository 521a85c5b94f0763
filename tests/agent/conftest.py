"""Fixtures of the agent tests: τ²-bench retail rows in the real database, the real SmolLM2 backend."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from connectors.entities import canonical_attributes
from streamdesk import db
from streamdesk.agent import backends, model_cache
from streamdesk.contracts import EntityType
from streamdesk.seed import taubench

SOURCE = "debezium"
ENTITY_TYPES: dict[str, EntityType] = {
    "products": "product",
    "customers": "customer",
    "orders": "order",
    "order_items": "order_item",
}
_INSERT = """
    INSERT INTO entities (entity_type, source, external_id, version, deleted, event_id, attributes, tenant)
    VALUES (%s, %s, %s, %s, false, %s, %s, 'default')
"""


@pytest.fixture(scope="session")
def retail_world(shared_data: Path) -> taubench.World:
    """The full τ²-bench retail DB (500 users, 1000 orders, 50 products)."""
    return taubench.load_world(path=shared_data / taubench.DB_FILE)


@pytest.fixture(scope="session")
def retail_tasks(shared_data: Path) -> dict[str, dict[str, Any]]:
    """τ²-bench retail tasks by id."""
    return {str(task["id"]): task for task in json.loads((shared_data / taubench.TASKS_FILE).read_text())}


@pytest.fixture(scope="session")
def test_split(shared_data: Path) -> list[str]:
    """Task ids of τ²-bench's retail test split."""
    return [str(task_id) for task_id in json.loads((shared_data / taubench.SPLIT_FILE).read_text())["test"]]


def entity_rows(world: taubench.World) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`(entity_type, external_id, attributes)` as the Debezium ingest stores the world's rows."""
    for table, row in taubench.table_rows(world):
        entity_type = ENTITY_TYPES[table]
        yield entity_type, str(row["id"]), canonical_attributes(entity_type, row)


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """A connection to the emptied database; uncommitted work is rolled back at the end."""
    with db.connect(clean_db) as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def load_world(conn: psycopg.Connection) -> Callable[[taubench.World], None]:
    """`load_world(world)` inserts the world's rows into `entities` (versions `[lsn, 0]`)."""

    def load(world: taubench.World) -> None:
        lsns = itertools.count(1000)
        rows = [
            (entity_type, SOURCE, external_id, [next(lsns), 0], f"seed:{external_id}", Jsonb(attributes))
            for entity_type, external_id, attributes in entity_rows(world)
        ]
        with conn.cursor() as cur:
            cur.executemany(_INSERT, rows)

    return load


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The converted SmolLM2 folder (converted on the first run, reused afterwards)."""
    return model_cache.ensure_model()


@pytest.fixture(scope="session")
def backend(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> backends.TransformersBackend:
    """The real SmolLM2-135M-Instruct backend, fp32 on one CPU thread, loaded once."""
    return backends.TransformersBackend(
        model_dir=model_dir, adapters_dir=tmp_path_factory.mktemp("adapters"), threads=1
    )


@pytest.fixture
def world(
    conn: psycopg.Connection, load_world: Callable[[taubench.World], None], retail_world: Any
) -> psycopg.Connection:
    """The connection with the τ²-bench world in the entity store (rolled back after the test)."""
    load_world(retail_world)
    return conn
