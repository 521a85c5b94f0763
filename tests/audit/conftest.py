"""Audit fixtures: events to append, the appended records, and a tamper switch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
import pytest

from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent, AuditRecord, VerifyReport
from streamdesk.identity.models import agent_for_customer


def event(ticket_id: str = "T-1", *, n: int = 0, action: AuditAction = AuditAction.TOOL_CALL) -> AuditEvent:
    """A tool-call event of the agent acting for customer `mei_davis_8935`."""
    return AuditEvent.for_principal(
        agent_for_customer("mei_davis_8935"),
        action=action,
        ticket_id=ticket_id,
        tool_name="get_order_details",
        arguments={"order_id": f"#W{2890441 + n}"},
        result_hash=audit.digest({"n": n}),
        model="SmolLM2-135M-Instruct",
        model_version="q4_1",
        adapter_version="kto-3",
        prompt_version="support-v1",
        chunk_ids=[f"kb:{n}:0"],
        access_filter={"tenant": "default", "levels": ["public"]},
        decision="allowed",
        trace_id="a" * 32,
        span_id="b" * 16,
    )


@pytest.fixture
def appended(conn: psycopg.Connection) -> Callable[[int], list[AuditRecord]]:
    """`appended(n)`: append n events alternating between tickets T-1 and T-2."""

    def append_many(n: int) -> list[AuditRecord]:
        return [audit.append(conn, event=event("T-1" if i % 2 == 0 else "T-2", n=i)) for i in range(n)]

    return append_many


@contextmanager
def tampering(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A transaction with the append-only trigger switched off, as an attacker with table rights would do."""
    with conn.transaction():
        conn.execute("SET LOCAL streamdesk.audit_maintenance = 'on'")
        yield conn


@pytest.fixture
def tamper() -> Callable[[psycopg.Connection], AbstractContextManager[psycopg.Connection]]:
    """`with tamper(conn): ...` runs statements the trigger would otherwise refuse."""
    return tampering


@pytest.fixture
def tampered(conn: psycopg.Connection, appended: Callable[[int], list[AuditRecord]]) -> Callable[..., VerifyReport]:
    """`tampered(n, *statements)`: append n events, run the statements with the trigger off, then verify."""

    def tamper_and_verify(n: int, *statements: str) -> VerifyReport:
        appended(n)
        with tampering(conn):
            for statement in statements:
                conn.execute(statement)
        return audit.verify(conn)

    return tamper_and_verify
