"""The one error runner: transient failures are retried, bad data is dead-lettered, anything else crashes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psycopg
import pytest

from connectors.base import ConnectorError
from streamdesk.streams.errors import (
    CRASH_EXIT_CODE,
    DECODING,
    ErrorAction,
    ErrorRunner,
    decode_policy,
    default_policy,
)


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (ConnectorError("not a ticket"), ErrorAction.DEAD_LETTER),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), ErrorAction.DEAD_LETTER),
        (psycopg.OperationalError("connection refused"), ErrorAction.RETRY),
        (TimeoutError(), ErrorAction.RETRY),
        (RuntimeError("a bug"), ErrorAction.CRASH),
    ],
)
def test_the_default_policy_dead_letters_bad_data_retries_outages_and_crashes_on_the_rest(
    exc: Exception, action: ErrorAction
) -> None:
    assert default_policy(exc) is action
    assert decode_policy(exc) is ErrorAction.DEAD_LETTER


def test_a_transient_failure_is_retried_until_the_work_succeeds() -> None:
    failures = [ConnectionError("broker away"), psycopg.OperationalError("database away")]
    seen: list[Exception] = []

    def work() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    runner = ErrorRunner(retry_for_s=10.0, on_error=seen.append)
    assert runner.run(work, what="flaky work") == "done"
    assert [type(exc) for exc in seen] == [ConnectionError, psycopg.OperationalError]


def test_bad_data_goes_to_the_dead_letter_handler_without_a_retry() -> None:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        raise ConnectorError("field id: missing")

    assert ErrorRunner().run(work, what="parsing", dead_letter=lambda exc: f"dead: {exc}") == "dead: field id: missing"
    assert calls == [1]


def test_sort_keeps_the_good_items_and_dead_letters_the_others() -> None:
    done, letters = DECODING.sort(
        [b"1", b"x", b"3"], lambda raw: int(raw), what="decoding", dead_letter=lambda raw, exc: (raw, type(exc))
    )
    assert done == [(b"1", 1), (b"3", 3)]
    assert letters == [(b"x", ValueError)]


@pytest.mark.parametrize(
    "failure",
    ["RuntimeError('a bug')", "ConnectorError('no dead-letter handler')", "ConnectionError('down for good')"],
)
def test_what_the_policy_cannot_handle_exits_the_worker_before_any_commit(failure: str) -> None:
    script = textwrap.dedent(
        f"""
        import logging
        from connectors.base import ConnectorError
        from streamdesk.streams.errors import ErrorRunner

        logging.basicConfig()

        def work():
            raise {failure}

        ErrorRunner(retry_for_s=0.3).run(work, what="storing a batch")
        print("unreachable")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == CRASH_EXIT_CODE
    assert "unreachable" not in done.stdout
    assert "crashing without committing: storing a batch failed" in done.stderr
