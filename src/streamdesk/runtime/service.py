"""Bring the platform up: broker and database (embedded unless configured), migrations, topics."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from streamdesk import db, topics
from streamdesk.config import Settings, get_settings
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Platform:
    """Where the running platform's broker and database are, and whether we started them."""

    bootstrap_servers: str
    database_url: str
    embedded_broker: bool
    embedded_database: bool


@contextmanager
def platform(settings: Settings | None = None, *, prepare: bool = True) -> Iterator[Platform]:
    """Start what is not configured, export its addresses to the environment, migrate, create topics."""
    settings = settings or get_settings()
    with ExitStack() as stack:
        bootstrap = settings.kafka.bootstrap_servers
        url = settings.database.url
        if not url:
            database = EmbeddedDatabase(settings.state_dir / "postgres").start()
            stack.callback(database.stop)
            url = database.url
        if not bootstrap:
            broker = EmbeddedBroker(settings.kafka.embedded_port, settings.state_dir / "tansu.log").start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap_servers
        os.environ["DATABASE_URL"] = url
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        get_settings.cache_clear()
        if prepare:
            db.migrate(url)
            created = topics.ensure_topics(bootstrap, replication_factor=settings.kafka.replication_factor)
            log.info("created %d topics", len(created))
        yield Platform(
            bootstrap_servers=bootstrap,
            database_url=url,
            embedded_broker=not settings.kafka.bootstrap_servers,
            embedded_database=not settings.database.url,
        )
