"""A decorator that keeps data problems inside ConnectorError, whatever layer noticed them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from connectors.base import Connector, ConnectorError, RawMessage
from streamdesk.contracts import CanonicalEvent

C = TypeVar("C", bound=Connector)
Parse = Callable[[C, RawMessage], list[CanonicalEvent]]


def guarded(parse: Parse[C]) -> Parse[C]:
    """Wrap `parse` so record validation errors and absurd nesting become ConnectorErrors."""

    @functools.wraps(parse)
    def wrapper(self: C, message: RawMessage) -> list[CanonicalEvent]:
        try:
            return parse(self, message)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "(root)"
            raise ConnectorError(
                f"{self.family} payload on {message.topic!r} gives an invalid {exc.title} at {where}: "
                f"{first.get('msg')} (input {first.get('input')!r:.80})"
            ) from exc
        except RecursionError as exc:
            raise ConnectorError(
                f"{self.family} payload on {message.topic!r} is nested too deeply to parse; flatten it"
            ) from exc

    return wrapper
