"""Shared fixtures: the real embedded PostgreSQL (one per session) and Tansu brokers (one per test)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("STREAMDESK_ENVIRONMENT", "test")
# The default embedder is ONNX int8, exported on first use: one export for the whole run (every test process and
# every `up` a test starts with its own state folder), not one per state folder. A file lock serialises the export.
os.environ.setdefault(
    "STREAMDESK_INGEST__EMBEDDING_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".streamdesk" / "models")
)

from streamdesk import db
from streamdesk.config import reset_settings
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase, free_port
from tests.feedback.factories import bitext_rows

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def truncate_all(url: str) -> None:
    """Empty every table the migrations created (not the alembic bookkeeping)."""
    with db.connect(url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if names:
            conn.execute("SET streamdesk.audit_maintenance = 'on'")
            conn.execute(f"TRUNCATE {', '.join(names)} CASCADE")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding `slow` tests first (order kept otherwise): `make test`'s workers (`-n`, `--dist loadfile`)
    start the long files early instead of finishing on one of them while the others idle."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the settings from the environment it sets up, never from an earlier test's."""
    reset_settings()
    yield
    reset_settings()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: the third-party payloads and datasets (see SOURCES.md)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The converted SmolLM2 folder (converted on the first run, reused afterwards; a file lock serialises workers)."""
    from streamdesk.agent import model_cache

    return model_cache.ensure_model()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated embedded PostgreSQL for the whole session."""
    server = EmbeddedDatabase(tmp_path_factory.mktemp("pg") / "data").start()
    db.migrate(server.url)
    yield server.url
    server.stop()


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the emptied session database (a package's conftest may narrow it)."""
    with db.connect(clean_db, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def rows(shared_data: Path) -> list[dict[str, str]]:
    """Bitext customer-support rows (instruction, intent, response)."""
    return bitext_rows(shared_data)


@pytest.fixture(scope="session")
def truncate() -> Callable[[str], None]:
    """`truncate(url)` empties every application table."""
    return truncate_all


@pytest.fixture
def clean_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session database, emptied before the test, and set as DATABASE_URL."""
    truncate_all(database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    reset_settings()
    yield database_url
    reset_settings()


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh Tansu broker for this test; its bootstrap servers are set as KAFKA_BOOTSTRAP_SERVERS."""
    server = EmbeddedBroker(free_port(), tmp_path / "tansu.log").start()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", server.bootstrap_servers)
    reset_settings()
    yield server.bootstrap_servers
    server.stop()
    reset_settings()


@pytest.fixture
def topics_ready(broker: str) -> str:
    """The broker with every registered topic created."""
    from streamdesk import topics

    topics.ensure_topics(broker)
    return broker
