"""The stream processors' one error policy: retry, dead-letter, or crash.

Decoding and canonicalising a message touches nothing but the message, so any failure there, of whatever
type, is that message's fault and it is dead-lettered (`decode_policy`); its batch-mates go on. Failures of
a whole batch write are retried with backoff when transient; a batch that keeps failing is split to find
the message at fault, which is dead-lettered (`default_policy`). Infrastructure that stays down crashes the
worker before its offsets are committed, so the supervisor restarts it and nothing is lost.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable

import psycopg
from pydantic import ValidationError

from connectors.base import ConnectorError
from streamdesk.exceptions import ContractError, StreamdeskError
from streamdesk.ingest.exceptions import PayloadTooLarge, UnknownTopic

log = logging.getLogger(__name__)


class ErrorAction(enum.Enum):
    """What a stream processor does with a failure."""

    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    CRASH = "crash"


ErrorPolicy = Callable[[Exception], ErrorAction]

DATA_ERRORS: tuple[type[Exception], ...] = (
    ConnectorError,
    ContractError,
    PayloadTooLarge,
    UnknownTopic,
    ValidationError,
    json.JSONDecodeError,
    UnicodeError,
    RecursionError,
    psycopg.DataError,
    psycopg.errors.IntegrityError,
)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, ConnectionError, TimeoutError)


def default_policy(exc: Exception) -> ErrorAction:
    """Bad data is dead-lettered, lost connections are retried, anything else crashes the worker."""
    if isinstance(exc, DATA_ERRORS):
        return ErrorAction.DEAD_LETTER
    if isinstance(exc, TRANSIENT_ERRORS):
        return ErrorAction.RETRY
    if isinstance(exc, StreamdeskError):
        return ErrorAction.DEAD_LETTER
    return ErrorAction.CRASH


def decode_policy(exc: Exception) -> ErrorAction:
    """Decoding or canonicalising one message: every failure is that message's fault, so it is dead-lettered."""
    return ErrorAction.DEAD_LETTER


def describe(exc: BaseException) -> str:
    """A one-line reason for a dead-letter record."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        text = f"field {where}: {first.get('msg')}"
    return f"{type(exc).__name__}: {text}".replace("\x00", "\\x00")[:2000]
