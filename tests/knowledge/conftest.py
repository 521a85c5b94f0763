"""Fixtures of the knowledge tests: the real embedder (once per session) and a database connection."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from streamdesk import db
from streamdesk.knowledge import embedders, embedding


@pytest.fixture(scope="session")
def embedder() -> embedding.BatchEmbedder:
    """The default embedder (all-MiniLM-L6-v2 on ONNX Runtime, int8), loaded once."""
    return embedders.get_embedder()


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """A connection (pgvector registered) to the emptied test database; uncommitted work is rolled back."""
    with db.connect(clean_db) as connection:
        yield connection
        connection.rollback()
