"""Turn configured operators and API tokens into principals; anything unknown is refused."""

from __future__ import annotations

import hmac

from streamdesk.identity.config import IdentitySettings, get_identity_settings
from streamdesk.identity.exceptions import UnknownOperatorError
from streamdesk.identity.models import Principal, agent_for_customer


def operator(*, operator_id: str, settings: IdentitySettings | None = None) -> Principal:
    """The principal of the configured operator `operator_id` (CLI use)."""
    settings = settings or get_identity_settings()
    configured = settings.operators.get(operator_id)
    if configured is None:
        known = ", ".join(sorted(settings.operators)) or "none configured"
        raise UnknownOperatorError(
            f"operator {operator_id!r} is not configured (known: {known}); add it to STREAMDESK_IDENTITY__OPERATORS"
        )
    return Principal(
        kind="user",
        id=operator_id,
        roles=frozenset(configured.roles),
        groups=frozenset(configured.groups),
        tenant=configured.tenant,
    )


def agent_identity(
    *, customer_id: str, tenant: str | None = None, settings: IdentitySettings | None = None
) -> Principal:
    """The agent's configured service identity acting for the verified customer `customer_id`."""
    settings = settings or get_identity_settings()
    return agent_for_customer(customer_id, tenant=tenant or settings.default_tenant, agent_id=settings.agent_id)


def operator_for_token(*, token: str, settings: IdentitySettings | None = None) -> Principal:
    """The principal whose configured API token equals `token` (compared in constant time)."""
    settings = settings or get_identity_settings()
    for operator_id, configured in settings.operators.items():
        secret = configured.token.get_secret_value() if configured.token is not None else ""
        if secret and token and hmac.compare_digest(secret.encode(), token.encode()):
            return operator(operator_id=operator_id, settings=settings)
    raise UnknownOperatorError("the bearer token matches no operator; set one in STREAMDESK_IDENTITY__OPERATORS")
