"""Database access: the URL in force, psycopg connections with pgvector, and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector

from streamdesk.config import REPO_ROOT, Settings, get_settings
from streamdesk.exceptions import ConfigurationError

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def equal_to(**values: Any) -> tuple[str, list[Any]]:
    """`column = %s AND ...` for each column whose value is not None (`true` when none), and those values in order."""
    given = {column: value for column, value in values.items() if value is not None}
    return " AND ".join(f"{column} = %s" for column in given) or "true", list(given.values())


def database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL (postgresql+psycopg://...) of the database in force."""
    settings = settings or get_settings()
    url = settings.database.url
    if not url:
        raise ConfigurationError("no database configured: set DATABASE_URL or run `streamdesk up`")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def libpq_url(url: str) -> str:
    """The same URL in the form psycopg/libpq accepts."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect(
    url: str | None = None, *, autocommit: bool = False, statement_timeout_s: float | None = None
) -> psycopg.Connection:
    """A psycopg connection with the pgvector types registered, given up after `database.connect_timeout_s`.

    `statement_timeout_s` (0 or None: no limit) bounds every statement, lock waits included, on the server.
    """
    settings = get_settings()
    conn = psycopg.connect(
        libpq_url(url or database_url(settings)),
        autocommit=autocommit,
        connect_timeout=settings.database.connect_timeout_s,
        options=f"-c statement_timeout={round(statement_timeout_s * 1000)}" if statement_timeout_s else None,
    )
    register_vector(conn)
    return conn


def request_connection(settings: Settings | None = None) -> psycopg.Connection:
    """An autocommit connection for serving one HTTP request: statements end after `request_statement_timeout_s`."""
    settings = settings or get_settings()
    return connect(
        database_url(settings), autocommit=True, statement_timeout_s=settings.database.request_statement_timeout_s
    )


@contextmanager
def transaction(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection whose work commits on success and rolls back on error."""
    with connect(url) as conn, conn.transaction():
        yield conn


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Apply alembic migrations up to `revision`."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    command.upgrade(cfg, revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Revert alembic migrations down to `revision`."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    command.downgrade(cfg, revision)
