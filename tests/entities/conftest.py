"""Fixtures of the entity and ticket store tests."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from streamdesk import db


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """A connection to the emptied test database; uncommitted work is rolled back."""
    with db.connect(clean_db) as connection:
        yield connection
        connection.rollback()
