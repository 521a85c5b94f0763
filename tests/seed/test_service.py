"""Replays reach a real (embedded Tansu) broker and can be consumed back, message for message."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message

from streamdesk.seed import changes, service
from streamdesk.seed.exceptions import SeedError

pytestmark = pytest.mark.stack


def _consume(bootstrap_servers: str, topic_names: list[str], expected: int, timeout_s: float = 60) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"seed-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe(topic_names)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is None:
                    messages.append(message)
    finally:
        consumer.close()
    return messages


def test_replay_publishes_counts_that_consume_back(topics_ready: str, shared_data: Path) -> None:
    summary = service.replay(bootstrap_servers=topics_ready, shared_data=shared_data, limit=3, progress=False)
    assert summary.counts["raw.debezium.customers"] == 3
    assert summary.counts["raw.mapped"] == 6
    assert set(summary.sources) == {"taubench", "help", "policy"}
    assert summary.as_dict()["total"] == summary.total == sum(summary.counts.values())
    messages = _consume(topics_ready, sorted(summary.counts), summary.total)
    assert Counter(m.topic() for m in messages) == summary.counts
    mapped = [m for m in messages if m.topic() == "raw.mapped"]
    assert all(dict(m.headers() or []) == {"mapping": b"kb_article"} for m in mapped)


def test_a_change_stream_arrives_with_its_tombstones(topics_ready: str) -> None:
    stream = changes.generate_changes(events=120, seed=4, late_events=3)
    counts = service.publish_changes(bootstrap_servers=topics_ready, stream=stream)
    assert counts == stream.counts()
    messages = _consume(topics_ready, sorted(counts), len(stream.messages))
    assert Counter(m.topic() for m in messages) == counts
    tombstones = sum(m.value() is None for m in messages)
    assert tombstones == sum(r.value is None for r in stream.messages) > 0
    published: dict[tuple[str, bytes | None], list[bytes | None]] = {}
    consumed: dict[tuple[str, bytes | None], list[bytes | None]] = {}
    for record in stream.messages:
        published.setdefault((record.topic, record.key), []).append(record.value)
    for message in messages:
        consumed.setdefault((str(message.topic()), message.key()), []).append(message.value())
    assert consumed == published  # each key's versions arrive in publish order


def test_an_unknown_seed_set_is_refused() -> None:
    with pytest.raises(SeedError, match="seed set 'wiki' is not known"):
        service.replay(bootstrap_servers="127.0.0.1:1", what=("wiki",))
