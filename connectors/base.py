"""The connector base class; the raw message it reads is the stream runtime's (`streamdesk.streams.messages`)."""

from __future__ import annotations

import json
import math
import re
import sys
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from streamdesk.contracts import CanonicalEvent
from streamdesk.exceptions import StreamdeskError
from streamdesk.streams.messages import RawMessage

__all__ = ["Connector", "ConnectorError", "MalformedJson", "RawMessage", "decode_json"]


class ConnectorError(StreamdeskError):
    """A vendor payload cannot be turned into canonical events; the message names why."""


class MalformedJson(ConnectorError):
    """Bytes that are not JSON text at all (bad syntax, bad UTF-8, NaN or Infinity)."""


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _non_json_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not JSON (JSON has no NaN or Infinity); send a finite number or null")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ConnectorError(f"number {text[:40]!r} is out of range for a 64-bit float; send it as a string")
    return number


def decode_json(data: bytes | None, *, what: str = "value") -> Any:
    """Parse JSON bytes into finite numbers and text; raise ConnectorError naming the first problem.

    Syntax errors, bad UTF-8 and NaN/Infinity raise MalformedJson (the bytes are not JSON); valid JSON that
    Python cannot represent (integers beyond the int-string limit, floats beyond 64 bits, absurd nesting) or
    that is not Unicode text (lone surrogate escapes) raises ConnectorError.
    """
    if data is None:
        return None
    try:
        value = json.loads(data, parse_constant=_non_json_constant, parse_float=_finite_float)
        if _SURROGATE_ESCAPE.search(data):
            json.dumps(value, ensure_ascii=False).encode()
        return value
    except UnicodeEncodeError as exc:
        raise ConnectorError(
            f"{what} has a lone UTF-16 surrogate escape ({exc.object[exc.start : exc.end]!r}); send Unicode text"
        ) from None
    except ConnectorError as exc:
        raise type(exc)(f"{what}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"{what} is not UTF-8 text (byte {exc.start}); send JSON") from exc
    except RecursionError as exc:
        raise ConnectorError(f"{what} is nested too deeply to parse; flatten the payload") from exc
    except json.JSONDecodeError as exc:
        hint = " (truncated?)" if exc.pos >= len(data.rstrip()) - 1 else ""
        raise MalformedJson(f"{what} is not valid JSON at char {exc.pos}{hint}: {exc.msg}") from exc
    except ValueError as exc:  # only int() fails on valid JSON: more digits than sys.get_int_max_str_digits()
        raise ConnectorError(
            f"{what} has an integer of more than {sys.get_int_max_str_digits()} digits; send it as a string"
        ) from exc


class Connector(ABC):
    """Turns one raw message of a source family into zero or more canonical events.

    `source` names the system the events come from (the family unless given); `tenant` owns them.
    """

    family: ClassVar[str]

    def __init__(self, *, source: str | None = None, tenant: str = "default") -> None:
        self.source = self.family if source is None else source
        self.tenant = tenant

    @abstractmethod
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """Canonical events for `message`; raise ConnectorError for input that cannot be used."""
