"""Turn operators (environment-configured or stored in the database) and API tokens into principals.

Anything unknown is refused. Environment operators (`STREAMDESK_IDENTITY__OPERATORS`) are looked up first;
database operators (`streamdesk operators add`) next, unrevoked ones only, so a revoked token is refused at
the next request.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import psycopg

from streamdesk import db
from streamdesk.config import get_settings
from streamdesk.identity import operators
from streamdesk.identity.config import IdentitySettings, get_identity_settings
from streamdesk.identity.exceptions import OperatorExistsError, UnknownOperatorError
from streamdesk.identity.models import Principal, Role, StoredOperator, agent_for_customer

ADD_HINT = "issue one with `streamdesk operators add ID --role ROLE` (or set STREAMDESK_IDENTITY__OPERATORS)"


class Credential(NamedTuple):
    """An operator and the SHA-256 of their current token (what a console session is checked against)."""

    principal: Principal
    token_digest: str


@contextmanager
def _database(conn: psycopg.Connection | None) -> Iterator[psycopg.Connection | None]:
    """`conn`, or a short-lived connection to the configured database; None when no database is configured."""
    if conn is not None:
        yield conn
    elif not get_settings().database.url:
        yield None
    else:
        with db.request_connection() as opened:
            yield opened


def _configured(operator_id: str, settings: IdentitySettings) -> Principal | None:
    configured = settings.operators.get(operator_id)
    if configured is None:
        return None
    return Principal(
        kind="user",
        id=operator_id,
        roles=frozenset(configured.roles),
        groups=frozenset(configured.groups),
        tenant=configured.tenant,
    )


def operator(
    *, operator_id: str, settings: IdentitySettings | None = None, conn: psycopg.Connection | None = None
) -> Principal:
    """The principal of the operator `operator_id`, configured or stored (CLI use)."""
    settings = settings or get_identity_settings()
    principal = _configured(operator_id, settings)
    if principal is not None:
        return principal
    with _database(conn) as database:
        stored = None if database is None else operators.live(database, operator_id=operator_id)
    if stored is not None:
        return stored[0].principal()
    known = ", ".join(sorted(settings.operators)) or "none"
    raise UnknownOperatorError(
        f"operator {operator_id!r} is not configured in the environment (there: {known}) nor stored; {ADD_HINT}"
    )


def operator_for_token(
    *, token: str, settings: IdentitySettings | None = None, conn: psycopg.Connection | None = None
) -> Principal:
    """The principal whose API token is `token`: configured ones compared in constant time, then stored ones."""
    settings = settings or get_identity_settings()
    if not token:
        raise UnknownOperatorError(f"an empty token matches no operator; {ADD_HINT}")
    for operator_id, configured in settings.operators.items():
        secret = configured.token.get_secret_value() if configured.token is not None else ""
        if secret and hmac.compare_digest(secret.encode(), token.encode()):
            return operator(operator_id=operator_id, settings=settings)
    with _database(conn) as database:
        stored = None if database is None else operators.by_token(database, token=token)
    if stored is None:
        raise UnknownOperatorError(f"the bearer token matches no operator; {ADD_HINT}")
    return stored.principal()


def credential(
    *, operator_id: str, settings: IdentitySettings | None = None, conn: psycopg.Connection | None = None
) -> Credential | None:
    """The operator `operator_id` with their current token's digest; None when unknown, revoked or tokenless."""
    settings = settings or get_identity_settings()
    principal = _configured(operator_id, settings)
    if principal is not None:
        token = settings.operators[operator_id].token
        return None if token is None else Credential(principal, operators.token_digest(token.get_secret_value()))
    with _database(conn) as database:
        stored = None if database is None else operators.live(database, operator_id=operator_id)
    return None if stored is None else Credential(stored[0].principal(), stored[1])


def add_operator(
    conn: psycopg.Connection,
    *,
    operator_id: str,
    roles: Iterable[Role],
    groups: Iterable[str] = (),
    tenant: str = "default",
    settings: IdentitySettings | None = None,
) -> tuple[StoredOperator, str]:
    """Store a new operator with a fresh token; the operator and the token (shown once, never stored)."""
    settings = settings or get_identity_settings()
    if operator_id in settings.operators:
        raise OperatorExistsError(
            f"operator {operator_id!r} is configured in STREAMDESK_IDENTITY__OPERATORS; pick another id"
        )
    return operators.add(conn, operator_id=operator_id, roles=roles, groups=groups, tenant=tenant)


def agent_identity(
    *, customer_id: str, tenant: str | None = None, settings: IdentitySettings | None = None
) -> Principal:
    """The agent's configured service identity acting for the verified customer `customer_id`."""
    settings = settings or get_identity_settings()
    return agent_for_customer(customer_id, tenant=tenant or settings.default_tenant, agent_id=settings.agent_id)
