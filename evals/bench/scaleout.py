"""`streamdesk bench scaleout`: several ingest and agent workers per consumer group, killed and added mid-run.

One fresh embedded broker and database. `streamdesk up`'s supervisor runs `workers` ingest and `workers` agent
processes; a change stream (creates, updates, deletes, re-creates, late re-sends: `seed/changes.py`) and
customer ticket events are published at a steady pace while, in turn, one worker of a group is SIGKILLed (the
supervisor restarts it) and one worker is added to a group, so partitions move mid-batch. Once both groups have
caught up, the store must equal the change stream's final state (nothing lost, duplicated or resurrected) and
every ticket event must have one answer, published once, whose writes (the audit trail's records of the
ticket) happened once.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streamdesk import db, topics
from streamdesk.agent import answers
from streamdesk.agent import worker as agent_worker
from streamdesk.audit import service as audit
from streamdesk.config import get_settings, reset_settings
from streamdesk.contracts import TicketEvent
from streamdesk.ingest import processors
from streamdesk.ingest import status as ingest_status
from streamdesk.kafka import Publisher
from streamdesk.knowledge import chunking, embedders
from streamdesk.lag import consumer_lag
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase, free_port
from streamdesk.runtime.service import SCALED_GROUPS, group_inputs
from streamdesk.runtime.supervisor import Supervisor, child_env, streamdesk_argv
from streamdesk.seed.changes import ChangeStream, generate_changes

SEED = 20261203
TICKET_PREFIX = "scaleout"
GROUP_IDS = {"ingest": ingest_status.INGEST_GROUP, "agent": agent_worker.APP_ID}
"""Each scaled worker group's Kafka consumer group (its Faust app id)."""
DISRUPTIONS = (("kill", "ingest"), ("add", "agent"), ("kill", "agent"), ("add", "ingest"))
"""The disruptions, in turn (repeated as needed): every four SIGKILL one worker of each group and add one to each."""


@dataclass
class IngestCheck:
    """How the store differs from the change stream's expected final state (every list empty: it equals it)."""

    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(keys) for name, keys in vars(self).items()}


def check_ingest(database_url: str, stream: ChangeStream, *, prefix: str = "chg") -> IngestCheck:
    """Compare the entities, documents and chunks of `stream`'s keys (ids `<prefix>-...`) with its final state."""
    check = IngestCheck()
    like = f"{prefix}-%"
    with db.connect(database_url) as conn:
        stored = {
            (etype, ext): (deleted, attrs)
            for etype, ext, deleted, attrs in conn.execute(
                "SELECT entity_type, external_id, deleted, attributes FROM entities WHERE external_id LIKE %s", (like,)
            )
        }
        documents = {
            ext: (deleted, title, level)
            for ext, deleted, title, level in conn.execute(
                "SELECT external_id, deleted, title, access_level FROM documents WHERE external_id LIKE %s", (like,)
            )
        }
        chunk_rows: dict[str, list[str]] = {}
        for ext, text in conn.execute(
            "SELECT external_id, text FROM chunks WHERE external_id LIKE %s ORDER BY external_id, chunk_no", (like,)
        ):
            chunk_rows.setdefault(ext, []).append(text)
    for key, expected in stream.expected_entities.items():
        row = stored.get(key)
        if expected is None:
            if row is not None and not row[0]:
                check.resurrected.append(":".join(key))
        elif row is None or row[0]:
            check.lost.append(":".join(key))
        elif any(row[1].get(k) != v for k, v in expected.items()):
            check.wrong.append(":".join(key))
    check.phantom = [
        ":".join(k) for k, (deleted, _) in stored.items() if not deleted and k not in stream.expected_entities
    ]
    settings = get_settings().ingest
    tokenizer = embedders.get_embedder().tokenizer
    for doc_id, expected_doc in stream.expected_documents.items():
        document, got = documents.get(doc_id), chunk_rows.get(doc_id, [])
        if expected_doc is None:
            if (document is not None and not document[0]) or got:
                check.resurrected.append(doc_id)
            continue
        if document is None or document[0]:
            check.lost.append(doc_id)
            continue
        chunks = chunking.chunk_text(
            expected_doc["text"], tokenizer=tokenizer, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
        )
        want = [chunk.text for chunk in chunks]
        if len(got) > len(want):
            check.duplicated.append(doc_id)
        if got != want or document[1] != expected_doc["title"] or document[2] != expected_doc["access"]:
            check.wrong.append(doc_id)
    return check


def ticket_events(count: int, *, seed: int) -> list[TicketEvent]:
    """`count` customer tickets, one `created` event each, with nothing that identifies a customer.

    The agent answers each with a request for identification (no model call: the run measures the workers, not
    the model), writing its answer, its conversation turn and its audit records once.
    """
    rng = random.Random(seed)
    topics_asked = ("where my parcel is", "how to change my address", "a refund for a broken lamp", "my invoice")
    return [
        TicketEvent(
            event_id=f"zendesk:{TICKET_PREFIX}-{n:05d}:created",
            source="zendesk",
            ticket_id=f"{TICKET_PREFIX}-{n:05d}",
            event_type="created",
            version=[1],
            occurred_at=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
            subject=f"Question {n}",
            body=f"Hello, I would like to know about {rng.choice(topics_asked)}. Thanks!",
        )
        for n in range(1, count + 1)
    ]


@dataclass
class AgentCheck:
    """Answers and writes per ticket event."""

    tickets: int
    answered: int
    answers_duplicated: int
    """Ticket events with more than one answer (rows, or distinct answer ids on the `answer` topic)."""
    answers_republished: int
    """Ticket events whose one answer went on the `answer` topic more than once (a worker killed between
    publishing and recording it redoes the publish; the delivery worker posts each answer id once)."""
    writes_duplicated: int
    """(ticket, audit action) pairs recorded more than once: the agent's writes for a one-event ticket."""


def _answers_on_topic(bootstrap_servers: str) -> dict[str, list[str]]:
    """Every answer event on the `answer` topic: the answer ids published per ticket event id."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": "bench-scaleout", "enable.auto.commit": False}
    )
    published: dict[str, list[str]] = {}
    try:
        partitions = consumer.list_topics(answers.ANSWER_TOPIC, timeout=10).topics[answers.ANSWER_TOPIC].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(answers.ANSWER_TOPIC, p), timeout=10) for p in partitions
        }
        waiting = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(answers.ANSWER_TOPIC, p, ends[p][0]) for p in waiting])
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            event = json.loads(message.value() or b"{}")
            published.setdefault(event["event_id"], []).append(event["answer_id"])
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None and offset + 1 >= ends[partition][1]:
                waiting.discard(partition)
    finally:
        consumer.close()
    return published


def check_agent(database_url: str, bootstrap_servers: str, events: Sequence[TicketEvent]) -> AgentCheck:
    """Count answers and the agent's writes per ticket event of `events`."""
    ids = [event.event_id for event in events]
    with db.connect(database_url) as conn:
        rows = Counter(
            event_id for (event_id,) in conn.execute("SELECT event_id FROM answers WHERE event_id = ANY(%s)", (ids,))
        )
        records = audit.records_after(conn, after_seq=0, limit=10_000_000)
    published = _answers_on_topic(bootstrap_servers)
    writes = Counter(
        (record.ticket_id, record.action) for record in records if TICKET_PREFIX in (record.ticket_id or "")
    )
    return AgentCheck(
        tickets=len(ids),
        answered=sum(1 for event_id in ids if rows[event_id]),
        answers_duplicated=sum(
            1 for event_id in ids if rows[event_id] > 1 or len(set(published.get(event_id, []))) > 1
        ),
        answers_republished=sum(
            1 for event_id in ids if len(published.get(event_id, [])) > len(set(published.get(event_id, [])))
        ),
        writes_duplicated=sum(1 for count in writes.values() if count > 1),
    )


def _lag(bootstrap_servers: str, group: str) -> int:
    return sum(consumer_lag(bootstrap_servers, group=GROUP_IDS[group], topic_names=group_inputs(group)).values())


def _answered(url: str) -> int:
    with db.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM answers WHERE published_at IS NOT NULL AND ticket_id LIKE %s", (f"{TICKET_PREFIX}-%",)
        ).fetchone()
    return int(row[0]) if row else 0


def _in_flight(group: str, *, bootstrap: str, url: str, tickets: int) -> bool:
    """Whether `group` is mid-run: ingest with messages waiting, the agent with some tickets answered, not all."""
    if group == "agent":
        return 0 < _answered(url) < tickets
    return _lag(bootstrap, group) > 0


def _publish(
    bootstrap_servers: str, stream: ChangeStream, tickets: Sequence[TicketEvent], *, batch: int, pause_s: float
) -> None:
    """Publish the change stream with the ticket events spread evenly through it, `batch` records per pause."""
    every = max(1, len(stream.messages) // max(1, len(tickets)))
    ticket_iter = iter(tickets)
    with Publisher(bootstrap_servers, client_id="bench-scaleout") as publisher:
        for n, message in enumerate(stream.messages):
            publisher.publish(message.topic, message.value, key=message.key, headers=message.headers)
            if n % every == every - 1 and (ticket := next(ticket_iter, None)) is not None:
                publisher.publish(
                    topics.TICKET,
                    processors.canonical_bytes(ticket, topic=topics.TICKET),
                    key=f"zendesk:{ticket.ticket_id}",
                )
            if n % batch == batch - 1:
                publisher.flush()
                time.sleep(pause_s)
        for ticket in ticket_iter:
            publisher.publish(
                topics.TICKET,
                processors.canonical_bytes(ticket, topic=topics.TICKET),
                key=f"zendesk:{ticket.ticket_id}",
            )
        publisher.flush()


@contextmanager
def _platform(root: Path) -> Iterator[tuple[str, str]]:
    """A fresh embedded database (migrated) and broker (topics created); this process's settings point at them."""
    database = EmbeddedDatabase(root / "pg").start()
    broker = EmbeddedBroker(free_port(), root / "tansu.log").start()
    previous = {name: os.environ.get(name) for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    try:
        db.migrate(database.url)
        topics.ensure_topics(broker.bootstrap_servers)
        os.environ.update(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, DATABASE_URL=database.url)
        reset_settings()
        yield broker.bootstrap_servers, database.url
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()
        broker.stop()
        database.stop()


def _settled(supervisor: Supervisor, *, bootstrap: str, url: str, tickets: int, timeout_s: float) -> bool:
    """Wait (restarting killed workers) until both groups have no lag, every ticket is answered and published,
    and the store has stopped changing; False when `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    last: tuple[Any, ...] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        supervisor.poll()
        with db.connect(url) as conn:
            snapshot = tuple(
                conn.execute(
                    "SELECT (SELECT count(*) FROM entities), (SELECT max(updated_at) FROM entities), "
                    "(SELECT count(*) FROM chunks), (SELECT max(updated_at) FROM chunks), "
                    "(SELECT count(*) FROM answers WHERE published_at IS NOT NULL AND ticket_id LIKE %s)",
                    (f"{TICKET_PREFIX}-%",),
                ).fetchone()
                or ()
            )
        if snapshot != last:
            last, since = snapshot, time.monotonic()
        caught_up = snapshot[-1] >= tickets and all(_lag(bootstrap, group) == 0 for group in SCALED_GROUPS)
        if caught_up and time.monotonic() - since >= 5.0:
            return True
        time.sleep(1.0)
    return False


def run(
    *,
    workers: int = 2,
    events: int = 5000,
    tickets: int = 300,
    disruptions: int = 4,
    seed: int = SEED,
    publish_s: float = 60.0,
    timeout_s: float = 1800.0,
    logs: Path | None = None,
) -> dict[str, Any]:
    """Run the scale-out benchmark; return its figures (`logs`: keep the workers' logs there)."""
    stream = generate_changes(events=events, seed=seed, late_events=max(1, events // 50))
    ticket_list = ticket_events(tickets, seed=seed)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="streamdesk-scaleout-") as tmp, _platform(Path(tmp)) as (bootstrap, url):
        log_dir = logs or Path(tmp) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = child_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=url)
        supervisor = Supervisor(max_backoff_s=2.0)
        for group in SCALED_GROUPS:
            supervisor.add_replicas(group, streamdesk_argv("worker", group), env=env, replicas=workers, log_dir=log_dir)
        started = time.monotonic()
        supervisor.start()
        batch = 50
        pause_s = publish_s / max(1, (len(stream.messages) + len(ticket_list)) // batch)
        producer = threading.Thread(
            target=_publish, args=(bootstrap, stream, ticket_list), kwargs={"batch": batch, "pause_s": pause_s}
        )
        producer.start()
        plan = list(itertools.islice(itertools.cycle(DISRUPTIONS), disruptions))
        moments = [publish_s * (n + 1) / (len(plan) + 1) for n in range(len(plan))]
        done: list[dict[str, Any]] = []
        publish_started = time.monotonic()
        try:
            for (kind, group), moment in zip(plan, moments, strict=True):
                at = publish_started + moment
                while time.monotonic() < at or (
                    time.monotonic() < at + timeout_s / 4
                    and not _in_flight(group, bootstrap=bootstrap, url=url, tickets=tickets)
                ):
                    supervisor.poll()
                    time.sleep(0.5)
                if kind == "kill":
                    name = rng.choice(supervisor.replicas(group))
                    supervisor.kill(name)
                else:
                    [name] = supervisor.add_replicas(
                        group, streamdesk_argv("worker", group), env=env, replicas=1, log_dir=log_dir
                    )
                    supervisor.start([name])
                done.append(
                    {
                        "kind": kind,
                        "worker": name,
                        "at_s": round(time.monotonic() - started, 1),
                        "lag": _lag(bootstrap, group),
                        "mid_run": _in_flight(group, bootstrap=bootstrap, url=url, tickets=tickets),
                    }
                )
            producer.join()
            settled = _settled(supervisor, bootstrap=bootstrap, url=url, tickets=len(ticket_list), timeout_s=timeout_s)
            seconds = time.monotonic() - started
            groups = supervisor.groups()
        finally:
            supervisor.stop(20.0)
        ingest = check_ingest(url, stream)
        agent = check_agent(url, bootstrap, ticket_list)
    load_1m, _, _ = os.getloadavg()
    return {
        "workers": workers,
        "workers_at_end": groups,
        "partitions": {
            group: min(topics.spec(name).partitions for name in group_inputs(group)) for group in SCALED_GROUPS
        },
        "events": len(stream.messages),
        "late_events": stream.late,
        "kills": {
            "sigkill": sum(1 for d in done if d["kind"] == "kill"),
            "added": sum(1 for d in done if d["kind"] == "add"),
        },
        "disruptions": done,
        "settled": settled,
        **ingest.counts(),
        "tickets": agent.tickets,
        "answered": agent.answered,
        "answers_duplicated": agent.answers_duplicated,
        "answers_republished": agent.answers_republished,
        "writes_duplicated": agent.writes_duplicated,
        "seconds": round(seconds, 1),
        "host": {"cpus": os.cpu_count(), "load_1m": round(load_1m, 1)},
    }
