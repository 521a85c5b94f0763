"""`streamdesk worker reference-erp`: the seeded world's system of record, consuming `command.erp`.

It seeds its tables from the same world `streamdesk seed` replays (once), then applies each command
(`service.apply`, once per idempotency key) and publishes its change log (Debezium events on the raw CDC
topics, refusals on `command.outcome`) before it commits the command's offset; a redelivered command is a
no-op. In production a Kafka Connect sink or the ERP's own integration reads `command.erp` instead.
"""

from __future__ import annotations

import json
import logging
import signal
import threading

import psycopg
from confluent_kafka import Consumer

from streamdesk import db
from streamdesk.commands.models import Command, topic_for
from streamdesk.config import REPO_ROOT, Settings, get_settings
from streamdesk.kafka import Publisher, PublishError
from streamdesk.reference_erp import service
from streamdesk.seed import taubench

log = logging.getLogger(__name__)
GROUP = "reference-erp"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def handle(conn: psycopg.Connection, *, payload: bytes, publisher: Publisher) -> str:
    """Apply one `command.erp` record and publish what it logged; the outcome ('applied', 'rejected', 'duplicate')."""
    data = {k: v for k, v in json.loads(payload).items() if k != "schema_version"}
    outcome = service.apply(conn, command=Command.model_validate(data))
    service.publish_log(conn, publisher=publisher)
    return outcome


def run(stop: threading.Event, *, settings: Settings) -> None:
    """Consume `command.erp` until `stop` is set."""
    bootstrap = settings.kafka.bootstrap_servers or ""
    with db.connect(db.database_url(settings), autocommit=True) as conn:
        service.ensure_schema(conn)
        loaded = service.seed(conn, world=taubench.load_world(path=taubench.world_path(shared_data=SHARED_DATA)))
        log.info("reference ERP ready (%d rows seeded)", loaded)
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": GROUP,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic_for(service.SERVER)])
        publisher = Publisher(bootstrap, client_id="reference-erp")
        try:
            service.publish_log(conn, publisher=publisher)
            while not stop.is_set():
                messages = consumer.consume(100, timeout=0.5)
                for message in messages:
                    payload = message.value()
                    if message.error() is None and payload:
                        outcome = handle(conn, payload=payload, publisher=publisher)
                        log.info("command %s: %s", message.key(), outcome)
                if messages:
                    consumer.commit(asynchronous=False)
        except PublishError as exc:
            raise SystemExit(f"reference ERP: the broker did not acknowledge its change log: {exc}") from exc
        finally:
            consumer.close()
            publisher.close()


def run_worker(settings: Settings | None = None) -> None:
    """Run the reference ERP in the foreground until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(stop, settings=settings or get_settings())
