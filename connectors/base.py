"""The connector base class and the raw message it reads."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streamdesk.contracts import CanonicalEvent
from streamdesk.exceptions import StreamdeskError


class ConnectorError(StreamdeskError):
    """A vendor payload cannot be turned into canonical events; the message names why."""


@dataclass(frozen=True)
class RawMessage:
    """One message from a raw topic, exactly as the broker delivered it."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = 0
    timestamp_ms: int | None = None


def decode_json(data: bytes | None, *, what: str = "value") -> Any:
    """Parse JSON bytes; raise ConnectorError naming the position of the first problem."""
    if data is None:
        return None
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise ConnectorError(f"{what} is not UTF-8 text (byte {exc.start}); send JSON") from exc
    except RecursionError as exc:
        raise ConnectorError(f"{what} is nested too deeply to parse; flatten the payload") from exc
    except json.JSONDecodeError as exc:
        hint = " (truncated?)" if exc.pos >= len(data.rstrip()) - 1 else ""
        raise ConnectorError(f"{what} is not valid JSON at char {exc.pos}{hint}: {exc.msg}") from exc


class Connector(ABC):
    """Turns one raw message of a source family into zero or more canonical events."""

    family: ClassVar[str]

    @abstractmethod
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """Canonical events for `message`; raise ConnectorError for input that cannot be used."""
