"""Feedback fixtures: an autocommit connection to the clean database and the Bitext support rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamdesk import db
from tests.feedback.factories import bitext_rows


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the emptied session database."""
    with db.connect(clean_db, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def rows(shared_data: Path) -> list[dict[str, str]]:
    """Bitext customer-support rows (instruction, intent, response)."""
    return bitext_rows(shared_data)
