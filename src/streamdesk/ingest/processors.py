"""The work of each hop, as plain functions over messages, free of Faust."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from connectors import registry as connectors
from connectors.base import decode_json
from streamdesk import contracts, telemetry, topics
from streamdesk.contracts import (
    CanonicalEvent,
    DeadLetter,
    DocumentEvent,
    EntityEvent,
    SourcePosition,
    StoredTicket,
    TicketEvent,
)
from streamdesk.exceptions import ContractError
from streamdesk.gateway import intake
from streamdesk.ingest.exceptions import PayloadTooLarge, UnknownTopic
from streamdesk.streams.deadletter import dead_letter_for
from streamdesk.streams.errors import DECODING
from streamdesk.streams.messages import RawMessage

CANONICAL_TOPIC = {DocumentEvent: topics.DOCUMENT, EntityEvent: topics.ENTITY, TicketEvent: topics.TICKET}
CANONICAL_SCHEMA = {
    topics.DOCUMENT: "document.v1.json",
    topics.ENTITY: "entity.v1.json",
    topics.TICKET: "ticket.v1.json",
    topics.STORED_TICKET: "ticket_stored.v1.json",
}
CANONICAL_RECORD: dict[str, type[DocumentEvent] | type[EntityEvent] | type[TicketEvent] | type[StoredTicket]] = {
    topics.DOCUMENT: DocumentEvent,
    topics.ENTITY: EntityEvent,
    topics.TICKET: TicketEvent,
    topics.STORED_TICKET: StoredTicket,
}


@dataclass
class Canonicalized:
    """What a batch of raw messages became."""

    outgoing: list[RawMessage] = field(default_factory=list)
    """Canonical events ready to publish."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0
    finished: list[dict[str, str]] = field(default_factory=list)
    """Headers of the messages that yielded nothing: done at this hop (the durable intake's view)."""


def canonical_events(
    message: RawMessage, *, max_body_bytes: int, headers: dict[str, str] | None = None
) -> list[RawMessage]:
    """Raw vendor message -> validated canonical events (carrying `headers`); raises for input that cannot be used."""
    if message.value is not None and len(message.value) > max_body_bytes:
        raise PayloadTooLarge(f"payload of {len(message.value)} bytes exceeds ingest.max_body_bytes={max_body_bytes}")
    spec = topics.registry().get(message.topic)
    if spec is None or spec.family is None:
        raise UnknownTopic(f"topic {message.topic!r} is not a raw topic in schemas/topics.yaml")
    decoded = decode_json(message.value)
    if decoded is not None:
        contracts.validate(spec.schema, decoded)
    outgoing = []
    position = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
    for event in connectors.connector_for(spec.family).parse(message):
        if isinstance(event, DocumentEvent | EntityEvent):
            event = event.model_copy(update={"position": position})
        topic = CANONICAL_TOPIC[type(event)]
        value = canonical_bytes(event, topic=topic)
        outgoing.append(RawMessage(topic, value, key=event.key.encode(), headers=dict(headers or {})))
    return outgoing


def canonical_bytes(event: CanonicalEvent, *, topic: str) -> bytes:
    """The validated UTF-8 JSON of `event` for `topic`; raises when it is not finite, not text, or too large."""
    where = _non_finite_at(event.model_dump())
    if where is not None:
        raise ContractError(f"{topic} event {event.event_id!r} has a NaN or infinite number at {where}; send a number")
    payload = event.to_json()
    contracts.validate(CANONICAL_SCHEMA[topic], payload)
    try:
        value = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise ContractError(
            f"{topic} event {event.event_id!r} has text that is not Unicode ({exc.object[exc.start : exc.end]!r}, "
            "a lone surrogate); send UTF-8 text"
        ) from None
    size = topics.record_bytes(key=event.key.encode(), value=value)
    limit = topics.max_message_bytes(topic)
    if size > limit:
        raise PayloadTooLarge(
            f"{topic} event {event.event_id!r} is {size} bytes, over the topic's max_message_bytes={limit} "
            "(schemas/topics.yaml); split the source record or raise that limit"
        )
    return value


def stored_ticket_bytes(record: StoredTicket) -> bytes:
    """The validated UTF-8 JSON of a `ticket.stored` record (its event passed `canonical_bytes` on the way in)."""
    payload = record.to_json()
    contracts.validate(CANONICAL_SCHEMA[topics.STORED_TICKET], payload)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _non_finite_at(value: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinite float in `value`; None when every number is finite."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "(root)"
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        found = _non_finite_at(item, f"{path}.{name}" if path else str(name))
        if found is not None:
            return found
    return None


def traced_canonical_events(message: RawMessage, *, max_body_bytes: int, tracing: bool) -> list[RawMessage]:
    """`canonical_events`, continuing the trace the raw message carries into the canonical events' headers.

    With `tracing`, the work is a consumer span in that trace and the events carry its context; without,
    the raw message's trace headers are passed on unchanged. Messages without trace context cost nothing.
    """
    carried = telemetry.trace_headers(message.headers)
    if not carried:
        return canonical_events(message, max_body_bytes=max_body_bytes)
    if not tracing:
        return canonical_events(message, max_body_bytes=max_body_bytes, headers=carried)
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": message.topic,
        "messaging.destination.partition.id": str(message.partition),
        "messaging.kafka.offset": message.offset,
    }
    with telemetry.continue_span(f"process {message.topic}", carried, attributes=attributes):
        return canonical_events(message, max_body_bytes=max_body_bytes, headers=telemetry.inject_headers())


def canonicalize(messages: list[RawMessage], *, max_body_bytes: int) -> Canonicalized:
    """Canonicalize a batch; each unusable message becomes a dead letter, the others go on."""
    result = Canonicalized()
    tracing = telemetry.exporting()
    done, result.dead_letters = DECODING.sort(
        messages,
        functools.partial(traced_canonical_events, max_body_bytes=max_body_bytes, tracing=tracing),
        what="canonicalizing",
        dead_letter=functools.partial(dead_letter_for, stage="raw"),
    )
    for message, produced in done:
        if not produced:
            result.skipped += 1
            result.finished.append(message.headers)
        result.outgoing.extend(
            replace(out, headers=out.headers | intake.part_headers(message.headers, part=part, parts=len(produced)))
            for part, out in enumerate(produced)
        )
    return result


def parse_canonical(message: RawMessage) -> Any:
    """Validate a canonical message on receipt and return its record."""
    payload = decode_json(message.value)
    contracts.validate(CANONICAL_SCHEMA[message.topic], payload)
    return CANONICAL_RECORD[message.topic].model_validate(payload)
