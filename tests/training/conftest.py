"""Training fixtures: the clean database, an adapters folder, the converted SmolLM2 and real LoRA adapters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamdesk import db
from streamdesk.agent import model_cache
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


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The converted SmolLM2 folder (converted on the first run, reused afterwards)."""
    return model_cache.ensure_model()
