"""Console sign-ins kept in PostgreSQL: started at sign-in, checked on every request, deleted at sign-out.

The signed cookie carries a random session id; the table holds only its SHA-256, so reading the table
does not yield a usable cookie, and deleting a row ends that sign-in even for a copy of the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import psycopg

from streamdesk.contracts import utcnow


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(conn: psycopg.Connection, *, operator_id: str, max_age_s: int) -> str:
    """A new session id for `operator_id`, valid for `max_age_s` seconds; expired sign-ins are swept."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute("DELETE FROM console_sessions WHERE expires_at <= %s", (now,))
    conn.execute(
        "INSERT INTO console_sessions (session_hash, operator_id, created_at, expires_at) VALUES (%s, %s, %s, %s)",
        (_hash(session_id), operator_id, now, now + timedelta(seconds=max_age_s)),
    )
    return session_id


def is_active(conn: psycopg.Connection, *, session_id: str, operator_id: str) -> bool:
    """True while the sign-in `session_id` of `operator_id` has neither ended nor expired."""
    row = conn.execute(
        "SELECT 1 FROM console_sessions WHERE session_hash = %s AND operator_id = %s AND expires_at > %s",
        (_hash(session_id), operator_id, utcnow()),
    ).fetchone()
    return row is not None


def end(conn: psycopg.Connection, *, session_id: str) -> None:
    """End the sign-in `session_id`: its cookie, and every copy of it, signs no one in any more."""
    conn.execute("DELETE FROM console_sessions WHERE session_hash = %s", (_hash(session_id),))
