"""Shared test helpers: build raw messages, read fixtures, check events against their contracts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from connectors.base import RawMessage
from streamdesk import contracts
from streamdesk.contracts import CanonicalEvent, DocumentEvent, EntityEvent, TicketEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
E = TypeVar("E", bound=CanonicalEvent)
SCHEMA_OF = {DocumentEvent: "document.v1.json", EntityEvent: "entity.v1.json", TicketEvent: "ticket.v1.json"}


def fixture(*parts: str) -> Path:
    """Path of a file under tests/fixtures."""
    return FIXTURES.joinpath(*parts)


def load(*parts: str) -> Any:
    """A JSON fixture, decoded."""
    return json.loads(fixture(*parts).read_text())


def lines(*parts: str) -> list[Any]:
    """A JSON-lines fixture, decoded line by line."""
    return [json.loads(line) for line in fixture(*parts).read_text().splitlines() if line.strip()]


def message(
    topic: str,
    value: Any,
    *,
    key: Any = None,
    headers: dict[str, str] | None = None,
    offset: int = 0,
    timestamp_ms: int | None = 1_700_000_000_000,
) -> RawMessage:
    """A RawMessage whose value (and key) are JSON-encoded unless already bytes or None."""

    def encode(item: Any) -> bytes | None:
        if item is None or isinstance(item, bytes):
            return item
        return json.dumps(item).encode()

    return RawMessage(
        topic=topic,
        value=encode(value),
        key=encode(key),
        headers=headers or {},
        offset=offset,
        timestamp_ms=timestamp_ms,
    )


def valid(events: Sequence[CanonicalEvent]) -> list[CanonicalEvent]:
    """`events`, after checking each against its canonical JSON Schema (and a JSON round trip)."""
    for event in events:
        payload = event.to_json()
        contracts.validate(SCHEMA_OF[type(event)], payload)
        assert type(event).model_validate(json.loads(json.dumps(payload))) == event
    return list(events)


def only(events: Sequence[CanonicalEvent], kind: type[E]) -> E:
    """The one event in `events`, checked against its contract and of type `kind`."""
    [event] = valid(events)
    assert isinstance(event, kind)
    return event


def raw_valid(family: str, value: Any) -> None:
    """Check a decoded raw value against the family's raw envelope schema."""
    contracts.validate(f"raw/{family}.v1.json", value)
