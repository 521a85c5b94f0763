"""The raw message every stream worker reads: one broker record as delivered, free of Faust and of vendors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RawMessage:
    """One message from a topic, exactly as the broker delivered it."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = 0
    timestamp_ms: int | None = None


def raw_message(event: Any) -> RawMessage:
    """A Faust event as a RawMessage (header values decoded as UTF-8)."""
    msg = event.message
    headers = {}
    for name, value in msg.headers or ():
        headers[name] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return RawMessage(
        topic=msg.topic,
        value=msg.value,
        key=msg.key,
        headers=headers,
        partition=msg.partition,
        offset=msg.offset,
        timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None,
    )


def kafka_headers(headers: Mapping[str, str]) -> dict[str, bytes] | None:
    """Headers as the Kafka client sends them (UTF-8 values); None when there are none."""
    return {name: value.encode() for name, value in headers.items()} if headers else None
