"""Poison messages through the real worker: every bad-input class in one batch, with production size limits.

Each bad message sits between good ones on the same partition. Every bad one must become a dead letter in
the table (original bytes kept) and on the `deadletter` topic (whole, or as a reference when too large),
every good one must be stored, and no agent may crash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from streamdesk import topics
from streamdesk.streams.messages import RawMessage
from tests.ingest.conftest import IngestStack, running_ingest_stack
from tests.ingest.poison import BAD, MAX_BODY_BYTES, good

pytestmark = [pytest.mark.slow, pytest.mark.stack]
GOOD_PER_TOPIC = 12


@pytest.fixture(scope="module")
def stack(database_url: str, truncate: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestStack]:
    """An ingest worker with the production body limit (2 MB)."""
    tmp: Path = tmp_path_factory.mktemp("poison")
    with running_ingest_stack(database_url, truncate, tmp, max_body_bytes=MAX_BODY_BYTES) as running:
        yield running


def publish_on_partition_zero(stack: IngestStack, messages: list[RawMessage]) -> list[tuple[str, int, int]]:
    """Produce `messages` in order to partition 0 of their topics; their (topic, partition, offset)."""
    limit = 2 * MAX_BODY_BYTES  # a vendor's producer, configured for the bodies streamdesk accepts
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "message.max.bytes": limit, "linger.ms": 50})
    placed: dict[int, tuple[str, int, int]] = {}
    errors: list[str] = []
    for n, raw in enumerate(messages):

        def delivered(err: Any, msg: Any, n: int = n) -> None:
            if err is not None:
                errors.append(str(err))
            placed[n] = (msg.topic(), msg.partition(), msg.offset())

        headers = list(raw.headers.items())
        producer.produce(raw.topic, raw.value, raw.key, partition=0, headers=headers, on_delivery=delivered)
    assert producer.flush(30) == 0 and not errors, errors
    return [placed[n] for n in range(len(messages))]


def test_every_bad_input_class_in_one_batch_is_dead_lettered_and_every_good_one_stored(stack: IngestStack) -> None:
    bad_topics = sorted({raw.topic for raw in BAD.values()})
    messages: list[RawMessage] = []
    kinds: list[str | None] = []
    counters = dict.fromkeys(bad_topics, 0)
    for name, raw in BAD.items():
        messages += [good(counters[raw.topic], raw.topic), raw]
        kinds += [None, name]
        counters[raw.topic] += 1
    for topic in bad_topics:  # and good ones after the last bad one on each partition
        while counters[topic] < GOOD_PER_TOPIC:
            messages.append(good(counters[topic], topic))
            kinds.append(None)
            counters[topic] += 1
    places = publish_on_partition_zero(stack, messages)
    bad_places = {name: place for name, place in zip(kinds, places, strict=True) if name is not None}

    def table_rows() -> dict[tuple[str, int, int], tuple[Any, ...]]:
        rows = stack.query('SELECT topic, partition, "offset", id, reason, value, stage FROM dead_letters')
        found = {(r[0], r[1], r[2]): r[3:] for r in rows}
        return found if len(found) >= len(BAD) else {}

    letters = stack.wait_for(table_rows, timeout_s=180, what="a dead letter per bad message")
    assert set(letters) == set(bad_places.values()), "exactly the bad messages are dead letters"
    for name, place in bad_places.items():
        _, reason, value, stage = letters[place]
        assert stage == "raw" and reason.split(":")[0], name
        assert (bytes(value) if value is not None else None) == BAD[name].value, f"{name}: original bytes kept"

    def stored() -> bool:
        documents = stack.query("SELECT count(*) FROM documents WHERE external_id LIKE 'kb-ok-%%'")[0][0]
        orders = stack.query("SELECT count(*) FROM entities WHERE entity_type = 'order' AND NOT deleted")[0][0]
        tickets = stack.query("SELECT count(DISTINCT ticket_id) FROM tickets")[0][0]
        expected = (counters["raw.mapped"], counters["raw.debezium.orders"], counters["raw.zendesk"])
        return (documents, orders, tickets) == expected

    stack.wait_for(stored, timeout_s=180, what="every good message stored")
    assert stack.query("SELECT count(*) FROM entities WHERE external_id IN ('902', '903', '904')") == [(0,)]

    on_topic = stack.dead_letters_on_topic(group="poison-dlq", wanted=len(BAD), polls=240)
    assert all(len(json.dumps(record)) <= topics.max_message_bytes(topics.DEAD_LETTER) for record in on_topic.values())
    for name, (topic, partition, offset) in bad_places.items():
        record = on_topic[f"{topic}/{partition}/{offset}"]
        row_id, reason, value, _ = letters[(topic, partition, offset)]
        assert record["reason"] == reason and record["dead_letter_id"] == row_id, name
        original = BAD[name].value
        if original is not None:
            assert record["value_sha256"] == hashlib.sha256(original).hexdigest(), name
            assert record["value_bytes"] == len(original), name
        if record["payload"] == "inline":
            assert (base64.b64decode(record["value_b64"]) if record["value_b64"] else None) == original, name
        else:
            assert record["value_b64"] is None and len(original or b"") > topics.max_message_bytes(topics.DEAD_LETTER)
    assert on_topic[f"{'/'.join(map(str, bad_places['oversize body']))}"]["payload"] == "table"

    assert stack.worker is not None and stack.worker.poll() is None, "the worker must still run"
    log = stack.log_path.read_text(errors="replace")
    assert "Crashed" not in log and "crashing" not in log, log[-3000:]
