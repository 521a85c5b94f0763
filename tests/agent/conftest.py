"""Fixtures of the agent tests: τ²-bench retail rows in the real database, the real SmolLM2 backend."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from connectors.entities import canonical_attributes
from streamdesk import db, topics
from streamdesk.agent import backends
from streamdesk.contracts import EntityType
from streamdesk.runtime.embedded import EmbeddedBroker, free_port
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
def backend(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> backends.TransformersBackend:
    """The real SmolLM2-135M-Instruct backend, fp32 on one CPU thread, loaded once."""
    return backends.TransformersBackend(
        model_dir=model_dir, adapters_dir=tmp_path_factory.mktemp("adapters"), threads=1
    )


@contextmanager
def agent_worker(
    database_url: str,
    *,
    truncate: Callable[[str], None],
    world: taubench.World,
    model_dir: Path,
    tmp: Path,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, str, Path]]:
    """A broker with every topic, `world` committed, and running `worker agent` and `worker audit-relay` (+ `env`).

    Yields the bootstrap servers, the database URL and the worker's log.
    """
    broker = EmbeddedBroker(free_port(), tmp / "tansu.log").start()
    topics.ensure_topics(broker.bootstrap_servers)
    truncate(database_url)
    positions = itertools.count(1000)
    with db.connect(database_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            _INSERT,
            [
                (kind, SOURCE, external_id, [next(positions), 0], f"seed:{external_id}", Jsonb(attributes))
                for kind, external_id, attributes in entity_rows(world)
            ],
        )
    worker_env = dict(os.environ)
    worker_env.update(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        DATABASE_URL=database_url,
        HF_HUB_OFFLINE="1",
        STREAMDESK_AGENT__MODEL_DIR=str(model_dir),
        STREAMDESK_ANSWER__MAX_STEPS="1",
        STREAMDESK_ANSWER__MAX_NEW_TOKENS="160",
        STREAMDESK_ANSWER__REPLY_MAX_CHARS="60",
        **(env or {}),
    )
    log = tmp / "worker.log"
    with log.open("ab") as out:  # the agent, and the audit relay that publishes its audit records
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "streamdesk.cli.main", "worker", name], env=worker_env, stdout=out, stderr=out
            )
            for name in ("agent", "audit-relay")
        ]
    try:
        yield broker.bootstrap_servers, database_url, log
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
        broker.stop()
        truncate(database_url)


@pytest.fixture
def world(
    conn: psycopg.Connection, load_world: Callable[[taubench.World], None], retail_world: taubench.World
) -> psycopg.Connection:
    """The connection with the τ²-bench world in the entity store (rolled back after the test)."""
    load_world(retail_world)
    return conn


@pytest.fixture(scope="module")
def worker_env() -> dict[str, str]:
    """Settings the module's agent worker gets besides the tests' defaults (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def stack(
    database_url: str,
    truncate: Callable[[str], None],
    retail_world: taubench.World,
    model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    worker_env: dict[str, str],
) -> Iterator[tuple[str, str, Path]]:
    """A broker with every topic, the τ²-bench world committed, and a running `streamdesk worker agent`."""
    tmp = tmp_path_factory.mktemp("agent-worker")
    with agent_worker(
        database_url, truncate=truncate, world=retail_world, model_dir=model_dir, tmp=tmp, env=worker_env
    ) as running:
        yield running
