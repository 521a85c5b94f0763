"""Bring the platform up: broker and database (embedded unless configured), migrations, topics."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from streamdesk import db, topics
from streamdesk.config import Settings, get_settings, reset_settings
from streamdesk.exceptions import ConfigurationError
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Platform:
    """Where the running platform's broker and database are, and whether we started them."""

    bootstrap_servers: str
    database_url: str
    embedded_broker: bool
    embedded_database: bool
    broker: EmbeddedBroker | None = field(default=None, compare=False, repr=False)
    """The embedded broker we started (None with an external one)."""


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
        broker: EmbeddedBroker | None = None
        if not bootstrap:
            broker = EmbeddedBroker(settings.kafka.embedded_port, settings.state_dir / "tansu.log").start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap_servers
        os.environ["DATABASE_URL"] = url
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        reset_settings()
        if prepare:
            db.migrate(url)
            created = topics.ensure_topics(bootstrap, replication_factor=settings.kafka.replication_factor)
            log.info("created %d topics", len(created))
        yield Platform(
            bootstrap_servers=bootstrap,
            database_url=url,
            embedded_broker=not settings.kafka.bootstrap_servers,
            embedded_database=not settings.database.url,
            broker=broker,
        )


SCALED_GROUPS = ("ingest", "agent")
"""The worker groups `streamdesk up --workers N` runs N of: consumer groups whose members split the partitions."""


def group_inputs(group: str) -> list[str]:
    """The topics the scaled worker `group` consumes."""
    if group == "ingest":
        return [*(s.name for s in topics.raw_topics()), topics.DOCUMENT, topics.ENTITY, topics.TICKET]
    if group == "agent":
        return [topics.STORED_TICKET]
    raise ConfigurationError(f"{group!r} is not a scaled worker group; scaled groups: {', '.join(SCALED_GROUPS)}")


def check_replicas(workers: int) -> None:
    """Refuse more workers per group than a scaled group's input topics have partitions (the extra ones would idle)."""
    for group in SCALED_GROUPS:
        fewest = min(topics.spec(name).partitions for name in group_inputs(group))
        if workers > fewest:
            raise ConfigurationError(
                f"{workers} {group} workers but its input topics have as few as {fewest} partitions; a consumer group "
                f"gives each partition to one member: use at most {fewest} workers or raise `partitions` in "
                "schemas/topics.yaml (on a new broker)"
            )


def refill_fresh_broker(*, plat: Platform, answer_tickets: bool) -> None:
    """Put back on a new, empty embedded broker what PostgreSQL says is unfinished.

    Stored webhook deliveries not yet processed and commands not yet confirmed become due for their relays at
    once, and (with the agent) stored ticket events without a published answer are republished to
    `ticket.stored`, with their tickets.
    """
    from streamdesk.agent import recovery
    from streamdesk.commands import service as commands
    from streamdesk.gateway import intake
    from streamdesk.kafka import Publisher

    with db.connect(plat.database_url) as conn:
        requeued = intake.requeue(conn=conn)
        conn.commit()
        resent = commands.requeue(conn)
        republished = 0
        if answer_tickets:
            with Publisher(plat.bootstrap_servers, client_id="streamdesk-up") as publisher:
                republished = recovery.republish_unanswered(conn=conn, publisher=publisher)
    log.info(
        "fresh embedded broker: %d unprocessed webhook deliveries due for the relay, %d unanswered ticket events "
        "republished, %d unconfirmed commands due for the command relay",
        requeued,
        republished,
        resent,
    )


def restart_embedded_broker(*, plat: Platform, settings: Settings) -> None:
    """Start the embedded broker again on its port (its topics are gone) and recreate the topics."""
    if plat.broker is None:
        return
    plat.broker.stop()
    plat.broker.start()
    created = topics.ensure_topics(plat.bootstrap_servers, replication_factor=settings.kafka.replication_factor)
    log.warning("embedded broker restarted on %s with %d new topics", plat.bootstrap_servers, len(created))
