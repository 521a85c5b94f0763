"""Waiting on a worker subprocess: poll a probe until it holds, or fail with the worker's log tail."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


WAIT_S = 600.0
"""The default ceiling: generous, since `make test` runs four test processes (and their workers) on two cores."""


def wait_for(probe: Callable[[], T], *, log: Path, what: str, timeout_s: float = WAIT_S) -> T:
    """What `probe` returns once it is truthy (asked every half second); fail after `timeout_s` with `log`'s tail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; worker log tail:\n{log.read_text(errors='replace')[-4000:]}")
