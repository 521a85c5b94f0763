"""The Faust application: raw -> canonical, then documents, entities and tickets into PostgreSQL.

Each agent takes a batch, does its work, and returns to Faust only after the work is durable (canonical
events delivered, or the database transaction committed); Faust acks, and so commits, a batch's offsets
only when control returns to it. Anything that cannot be made durable crashes the worker before that.
Messages relayed from the durable intake (`gateway/intake.py`) are marked done in the same transaction
that stores them (or their dead letters), so the relay stops re-publishing them. The ticket hop then
publishes each stored ticket event, with the ticket as stored, to `ticket.stored` (the agent's input)
before its offsets commit: the agent never reads back a row the store may not have written yet.

Trace context rides along: canonical events carry the trace of the raw message they came from, and each
store batch is a span linked to its messages' traces (spans only when an exporter is configured).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import faust
import psycopg

from streamdesk import db, telemetry, topics
from streamdesk.commands import service as commands
from streamdesk.config import Settings, get_settings
from streamdesk.contracts import DeadLetter, StoredTicket
from streamdesk.gateway import intake
from streamdesk.ingest import processors
from streamdesk.knowledge import embedders
from streamdesk.streams import deadletter
from streamdesk.streams.app import bootstrap_servers, faust_app, raw_topic, run_app
from streamdesk.streams.deadletter import dead_letter_for, natural_key, store_dead_letters
from streamdesk.streams.errors import DECODING, ErrorRunner, crash_on_error
from streamdesk.streams.messages import RawMessage, kafka_headers, raw_message

log = logging.getLogger(__name__)
T = TypeVar("T")
APP_ID = "streamdesk-ingest"
"""The Faust app id, which is also the consumer group."""


def _record_finished(conn: psycopg.Connection, headers: Sequence[Mapping[str, str]]) -> None:
    intake.record_done(conn=conn, headers=headers)


class BatchWriter:
    """Runs one hop's database writes on a dedicated thread, under the stream error runner."""

    def __init__(self, *, name: str, settings: Settings, retry_for_s: float = 60.0):
        self.name = name
        self.settings = settings
        self.errors = ErrorRunner(retry_for_s=retry_for_s, on_error=self._drop_connection)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ingest-{name}")
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(db.database_url(self.settings))
        return self._conn

    def _drop_connection(self, exc: Exception) -> None:
        if isinstance(exc, psycopg.OperationalError) and self._conn is not None:
            self._conn.close()

    def _write(self, fn: Callable[[psycopg.Connection, Sequence[T]], Any], items: Sequence[T]) -> list[DeadLetter]:
        conn = self._connection()
        with conn.transaction():
            fn(conn, items)
        return []

    def _write_isolating(
        self,
        fn: Callable[[psycopg.Connection, Sequence[T]], Any],
        items: Sequence[T],
        on_bad: Callable[[T, Exception], DeadLetter],
    ) -> list[DeadLetter]:
        """Write `items`; split the batch to isolate and dead-letter items whose data breaks the write."""

        def isolate(exc: Exception) -> list[DeadLetter]:
            if len(items) == 1:
                return [on_bad(items[0], exc)]
            mid = len(items) // 2
            return self._write_isolating(fn, items[:mid], on_bad) + self._write_isolating(fn, items[mid:], on_bad)

        return self.errors.run(
            functools.partial(self._write, fn, items), what=f"{self.name} write", dead_letter=isolate
        )

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> dict[tuple[str, int, int, str], int]:
        """Store dead letters durably and return their row ids (retrying; crash if the database stays away).

        A dead-lettered webhook delivery is done: its intake row is marked in the same transaction.
        """
        ids: dict[tuple[str, int, int, str], int] = {}

        def store(conn: psycopg.Connection, batch: Sequence[DeadLetter]) -> None:
            stored = store_dead_letters(conn, letters=batch)
            intake.record_dead_letters(conn=conn, letters=batch)
            ids.update(zip([natural_key(letter) for letter in batch], stored, strict=True))

        for letter in self._write_isolating(store, list(letters), lambda letter, exc: letter) if letters else []:
            log.error("dead letter %s could not be stored; it is only on the topic", natural_key(letter))
        return ids

    def record_finished(self, headers: Sequence[Mapping[str, str]]) -> None:
        """Record durably that the messages with `headers` are done (the durable intake's processed mark)."""
        if headers:
            self.errors.run(
                functools.partial(self._write, _record_finished, list(headers)),
                what="recording processed webhook deliveries",
            )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on this hop's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)


def create_app(settings: Settings | None = None) -> faust.App:
    """The ingest Faust app for `settings` (broker and database from there)."""
    from streamdesk.entities import store as entities
    from streamdesk.knowledge import store as knowledge

    settings = settings or get_settings()
    servers = bootstrap_servers(settings)
    ingest = settings.ingest
    telemetry.configure(settings=settings.telemetry, service_name=APP_ID)
    telemetry.configure_metrics(settings=settings.telemetry, service_name=APP_ID)
    embedders.get_embedder()  # load the model before joining the group, so no batch waits for it
    app = faust_app(APP_ID, settings=settings, producer_acks=-1, producer_linger=0.005, stream_buffer_maxsize=4096)
    raw_names = [s.name for s in topics.raw_topics()]
    telemetry.watch_consumer_lag(
        bootstrap_servers=servers,
        group=APP_ID,
        topic_names=[*raw_names, topics.DOCUMENT, topics.ENTITY, topics.TICKET],
    )
    stored_out = raw_topic(app, topics.STORED_TICKET)
    raw_in = raw_topic(app, *raw_names)
    out_topics = {name: raw_topic(app, name) for name in (topics.DOCUMENT, topics.ENTITY, topics.TICKET)}
    dlq_topic = raw_topic(app, topics.DEAD_LETTER)
    writers = {name: BatchWriter(name=name, settings=settings) for name in ("raw", "document", "entity", "ticket")}

    async def publish_dead_letters(writer: BatchWriter, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        ids = await writer.run(writer.write_dead_letters, letters)
        futures = []
        for letter in letters:
            value = deadletter.topic_value(letter, dead_letter_id=ids.get(natural_key(letter)))
            futures.append(await dlq_topic.send(key=deadletter.topic_key(letter), value=value))
        await asyncio.gather(*futures)
        for letter in letters:
            log.warning("dead-lettered %s/%s@%s: %s", letter.topic, letter.partition, letter.offset, letter.reason)

    @app.agent(raw_in, name="canonicalize")
    @crash_on_error
    async def canonicalize(stream: faust.StreamT) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]
            500, within=0.05
        ):
            started = time.perf_counter()
            messages = [raw_message(e) for e in events]
            result = processors.canonicalize(messages, max_body_bytes=ingest.max_body_bytes)
            futures = [
                await out_topics[o.topic].send(key=o.key, value=o.value, headers=kafka_headers(o.headers))
                for o in result.outgoing
            ]
            await asyncio.gather(*futures)
            await publish_dead_letters(writers["raw"], result.dead_letters)
            await writers["raw"].run(writers["raw"].record_finished, result.finished)
            telemetry.record_ingest_batch(hop="raw", messages=len(messages), seconds=time.perf_counter() - started)

    async def publish_stored(items: Sequence[tuple[RawMessage, Any]], stored: Mapping[str, StoredTicket]) -> None:
        """Send each committed ticket event, with its stored ticket, to `ticket.stored` (same key and headers)."""
        futures = []
        for message, event in items:
            if (record := stored.get(event.event_id)) is not None:
                value = processors.stored_ticket_bytes(record)
                headers = kafka_headers(message.headers)
                futures.append(await stored_out.send(key=record.key.encode(), value=value, headers=headers))
        await asyncio.gather(*futures)

    def hop(
        name: str,
        apply: Callable[[psycopg.Connection, Sequence[Any]], Any],
        batch: int,
        *,
        then_publish: bool = False,
    ) -> None:
        """Store `canonical.<name>` in batches; `then_publish`: send the committed tickets on to `ticket.stored`."""
        writer = writers[name]
        stage: Any = name
        stored: dict[str, StoredTicket] = {}

        def apply_recording(conn: psycopg.Connection, items: Sequence[tuple[RawMessage, Any]]) -> Any:
            """Store the records and, in the same transaction, mark their webhook deliveries' parts done."""
            records = [record for _, record in items]
            result = apply(conn, records)
            intake.record_done(conn=conn, headers=[message.headers for message, _ in items])
            if then_publish:
                stored.update((s.event.event_id, s) for s in entities.stored_tickets(conn, events=records))
            return result

        async def process(stream: faust.StreamT) -> None:
            async for events in stream.take_events(  # type: ignore[attr-defined]
                batch, within=ingest.batch_within_s
            ):
                started = time.perf_counter()
                messages = [raw_message(event) for event in events]
                attributes = {"messaging.system": "kafka", "messaging.batch.message_count": len(messages)}
                carriers = (message.headers for message in messages)
                with telemetry.batch_span(f"store {name}s", carriers, attributes=attributes):
                    parsed, letters = DECODING.sort(
                        messages,
                        processors.parse_canonical,
                        what=f"parsing canonical.{name}",
                        dead_letter=functools.partial(dead_letter_for, stage=stage),
                    )
                    if parsed:
                        stored.clear()
                        bad = await writer.run(
                            writer._write_isolating,
                            lambda conn, items: apply_recording(conn, items),
                            parsed,
                            lambda item, exc: dead_letter_for(item[0], exc, stage=stage),
                        )
                        letters.extend(bad)
                        if then_publish:
                            lost = {(letter.partition, letter.offset) for letter in bad}
                            committed = [(m, r) for m, r in parsed if (m.partition, m.offset) not in lost]
                            await publish_stored(committed, stored)
                    await publish_dead_letters(writer, letters)
                telemetry.record_ingest_batch(hop=name, messages=len(messages), seconds=time.perf_counter() - started)

        process.__name__ = f"store_{name}s"
        app.agent(out_topics[f"canonical.{name}"], name=f"store_{name}s")(crash_on_error(process))

    def apply_documents(conn: psycopg.Connection, events: Sequence[Any]) -> Any:
        return knowledge.apply_documents(
            conn,
            events,
            embedder=embedders.get_embedder(),
            chunk_tokens=ingest.chunk_tokens,
            chunk_overlap=ingest.chunk_overlap,
        )

    hop("document", apply_documents, ingest.embed_batch)

    def apply_entities(conn: psycopg.Connection, events: Sequence[Any]) -> Any:
        """Store the entity events and confirm the commands whose changes they bring back, in one transaction."""
        result = entities.apply_entities(conn, events)
        commands.confirm_changes(conn, events)
        return result

    hop("entity", apply_entities, 1000)
    hop("ticket", entities.apply_tickets, 500, then_publish=True)

    return app


def run_worker(settings: Settings | None = None, *, loglevel: str = "info") -> None:
    """Run the ingest worker in the foreground until stopped."""
    run_app(create_app(settings), loglevel=loglevel)
