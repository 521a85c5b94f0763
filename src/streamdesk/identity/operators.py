"""Operators kept in PostgreSQL: issued with a random token of which only the SHA-256 is stored, listed, revoked.

Tokens are 256 random bits from `secrets`; for a secret that cannot be guessed a plain SHA-256 is as safe as a
slow KDF (which exists to make guessing low-entropy passwords expensive) and lets one index probe find the
operator a token belongs to. A revoked row stays as history; the id may be issued again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

import psycopg

from streamdesk.contracts import utcnow
from streamdesk.identity.exceptions import OperatorExistsError, UnknownOperatorError
from streamdesk.identity.models import Role, StoredOperator

TOKEN_PREFIX = "sdo_"
"""Marks a streamdesk operator token, so secret scanners and people can tell what leaked."""

COLUMNS = "operator_id, roles, groups, tenant, created_at, revoked_at"


def new_token() -> str:
    """A fresh operator token: the prefix and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def _stored(row: tuple[Any, ...]) -> StoredOperator:
    operator_id, roles, groups, tenant, created_at, revoked_at = row
    return StoredOperator(
        operator_id=operator_id,
        roles=[Role(name) for name in roles],
        groups=list(groups),
        tenant=tenant,
        created_at=created_at,
        revoked_at=revoked_at,
    )


def add(
    conn: psycopg.Connection,
    *,
    operator_id: str,
    roles: Iterable[Role],
    groups: Iterable[str] = (),
    tenant: str = "default",
    token: str | None = None,
) -> tuple[StoredOperator, str]:
    """Store the operator `operator_id` with a new token (or `token`); the operator and the token, shown once."""
    token = token or new_token()
    try:
        with conn.transaction():
            row = conn.execute(
                f"INSERT INTO operators (operator_id, token_sha256, roles, groups, tenant, created_at) "
                f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
                (operator_id, token_digest(token), sorted(set(roles)), sorted(set(groups)), tenant, utcnow()),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise OperatorExistsError(
            f"operator {operator_id!r} already exists; revoke it first (`streamdesk operators revoke {operator_id}`)"
        ) from None
    assert row is not None
    return _stored(row), token


def live(conn: psycopg.Connection, *, operator_id: str) -> tuple[StoredOperator, str] | None:
    """The unrevoked operator `operator_id` and their token's digest; None when there is none."""
    row = conn.execute(
        f"SELECT {COLUMNS}, token_sha256 FROM operators WHERE operator_id = %s AND revoked_at IS NULL",
        (operator_id,),
    ).fetchone()
    return None if row is None else (_stored(row[:-1]), row[-1])


def by_token(conn: psycopg.Connection, *, token: str) -> StoredOperator | None:
    """The unrevoked operator holding `token`; None when no live operator does."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM operators WHERE token_sha256 = %s AND revoked_at IS NULL", (token_digest(token),)
    ).fetchone()
    return None if row is None else _stored(row)


def list_stored(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[StoredOperator]:
    """The stored operators by id, oldest first; revoked ones only when asked."""
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    rows = conn.execute(f"SELECT {COLUMNS} FROM operators {where} ORDER BY operator_id, created_at").fetchall()
    return [_stored(row) for row in rows]


def revoke(conn: psycopg.Connection, *, operator_id: str) -> StoredOperator:
    """Revoke the live operator `operator_id`: their token is refused from the next request on."""
    row = conn.execute(
        f"UPDATE operators SET revoked_at = greatest(%s, created_at) WHERE operator_id = %s AND revoked_at IS NULL "
        f"RETURNING {COLUMNS}",
        (utcnow(), operator_id),
    ).fetchone()
    if row is None:
        raise UnknownOperatorError(
            f"no live database operator {operator_id!r}; `streamdesk operators list` shows who can be revoked"
        )
    return _stored(row)


def any_issued(conn: psycopg.Connection) -> bool:
    """True once any operator was ever stored (revoked ones count)."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM operators)").fetchone() == (True,)
