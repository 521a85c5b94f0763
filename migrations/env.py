"""Alembic environment: static migrations, URL from alembic config or streamdesk settings."""

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

from streamdesk.db import NAMING_CONVENTION, database_url

config = context.config
target_metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or database_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
