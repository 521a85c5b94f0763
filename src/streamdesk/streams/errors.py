"""The stream workers' one error runner: work is retried, dead-lettered, or crashes the worker, as a policy says.

The policy is a typed value (`ErrorPolicy`: an exception -> an `ErrorAction`), the shape of quix-streams'
`on_processing_error`. Decoding and canonicalising a message touches nothing but the message, so any failure
there, of whatever type, is that message's fault and it is dead-lettered (`decode_policy`); its batch-mates
go on. Other work (a batch write, answering a ticket) is retried with backoff when the failure is transient,
dead-lettered when it is the data's fault, and otherwise crashes the worker (`default_policy`):
infrastructure that stays down crashes it before its offsets are committed, so the supervisor restarts it
and nothing is lost.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import psycopg
from pydantic import ValidationError

from streamdesk.exceptions import StreamdeskError

log = logging.getLogger(__name__)
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item of a batch
D = TypeVar("D")
CRASH_EXIT_CODE = 70


class ErrorAction(enum.Enum):
    """What a stream worker does with a failure."""

    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    CRASH = "crash"


ErrorPolicy = Callable[[Exception], ErrorAction]
"""What to do with a failure of stream work."""

DATA_ERRORS: tuple[type[Exception], ...] = (
    StreamdeskError,  # connectors', contracts' and ingest's refusals of a payload
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


def crash(reason: str) -> NoReturn:
    """Exit at once, before Faust can commit the offsets of the batch in hand."""
    log.critical("stream worker crashing without committing: %s", reason)
    logging.shutdown()
    os._exit(CRASH_EXIT_CODE)


def crash_on_error(process: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Wrap a Faust agent so an error escaping it exits the worker, instead of Faust restarting it past a commit."""

    @functools.wraps(process)
    async def guarded(stream: Any) -> None:
        try:
            await process(stream)
        except Exception as exc:
            crash(f"agent {process.__name__} failed: {describe(exc)}")

    return guarded


def _keep(exc: Exception) -> None:
    """The default `on_error`: nothing to release."""


@dataclass(frozen=True, kw_only=True)
class ErrorRunner:
    """Runs stream work under `policy`: retried with backoff for up to `retry_for_s`, dead-lettered, or crashed.

    `on_error` sees every failure first (a worker drops a broken connection there).
    """

    policy: ErrorPolicy = default_policy
    retry_for_s: float = 60.0
    on_error: Callable[[Exception], None] = _keep

    def run(self, work: Callable[[], T], *, what: str, dead_letter: Callable[[Exception], T] | None = None) -> T:
        """`work()`; on a failure the policy dead-letters, `dead_letter(exc)` (without one, the worker crashes)."""
        deadline, delay = time.monotonic() + self.retry_for_s, 0.2
        while True:
            try:
                return work()
            except Exception as exc:
                self.on_error(exc)
                action = self.policy(exc)
                if action is ErrorAction.RETRY and time.monotonic() < deadline:
                    log.warning("%s failed (%s); retrying in %.1fs", what, describe(exc), delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if action is ErrorAction.DEAD_LETTER and dead_letter is not None:
                    return dead_letter(exc)
                crash(f"{what} failed: {describe(exc)}")

    def sort(
        self, items: Iterable[I], work: Callable[[I], T], *, what: str, dead_letter: Callable[[I, Exception], D]
    ) -> tuple[list[tuple[I, T]], list[D]]:
        """`work` on each item under the policy: the items with their results, and the dead letters of the others."""
        done: list[tuple[I, T]] = []
        letters: list[D] = []
        failed: Callable[[Exception], T | _Failed] = _Failed
        for item in items:
            attempt: Callable[[], T | _Failed] = functools.partial(work, item)
            outcome = self.run(attempt, what=what, dead_letter=failed)
            if isinstance(outcome, _Failed):
                letters.append(dead_letter(item, outcome.exc))
            else:
                done.append((item, outcome))
        return done, letters


@dataclass(frozen=True)
class _Failed:
    """Why the policy dead-letters an item."""

    exc: Exception


DECODING = ErrorRunner(policy=decode_policy, retry_for_s=0.0)
"""Decoding one message: whatever fails is that message's fault."""
