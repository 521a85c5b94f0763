"""Reading what a test published: the JSON messages of one topic, from the start."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import Consumer


def read_json(bootstrap_servers: str, topic: str, *, group: str, polls: int = 40) -> list[Any]:
    """The decoded messages of `topic` from the earliest offset, until a poll comes back empty after some."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    seen: list[Any] = []
    for _ in range(polls):
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen.append(json.loads(message.value()))
        elif seen and message is None:
            break
    consumer.close()
    return seen
