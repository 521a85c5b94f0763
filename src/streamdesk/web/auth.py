"""Who is calling, and may they call this route: API keys and OIDC-style JWTs, decided by the RBAC rules.

`authorize_route` is the one gate every API router carries: it looks the route up in the policy's
`routes:` table (no entry: denied), lets public routes through, and otherwise resolves the caller's
principal from `X-API-Key`, `Authorization: Bearer <operator token>` or `Authorization: Bearer <JWT>`.
Missing, unknown, malformed or expired credentials are 401 with `WWW-Authenticate`; a principal
whose roles the route's rule does not list is 403.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Protocol

import jwt
import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import compile_path

from streamdesk import db
from streamdesk.config import get_settings
from streamdesk.exceptions import ConfigurationError, StreamdeskError
from streamdesk.identity import service as identity
from streamdesk.identity.exceptions import UnknownOperatorError
from streamdesk.identity.models import Principal, Role
from streamdesk.web.config import ApiSettings, get_api_settings

log = logging.getLogger(__name__)

REALM = "streamdesk"
PEOPLE_ROLES = frozenset(Role) - {Role.SERVICE_AGENT}
"""Roles a JWT may grant; the agent's service identity never comes over HTTP."""

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An operator's API token.")
bearer = HTTPBearer(auto_error=False, description="An operator's API token, or a JWT from the identity provider.")


class InvalidCredentialsError(StreamdeskError):
    """A credential was sent but is unknown, malformed, expired or for someone else."""


class RoutePolicy(Protocol):
    """What the gate asks of the RBAC policy; `policy.service` is one, handed over by `api.app.use_policy`."""

    def routes(self) -> frozenset[str]: ...

    def route_rule(self, *, route: str) -> Any: ...

    def authorize_route(self, *, principal: Principal | None, route: str) -> Any: ...

    def record_route_denial(
        self, conn: psycopg.Connection, *, principal: Principal, route: str, decision: Any
    ) -> None: ...


def route_policy(app: Any) -> RoutePolicy:
    """The RBAC policy the gate of `app` consults (set by `api.app.use_policy`; the plumbing imports no domain)."""
    policy: RoutePolicy | None = getattr(app.state, "route_policy", None)
    if policy is None:
        raise ConfigurationError("this app has no route policy; build it with api.app.create_app or call use_policy")
    return policy


def unauthorized(reason: str, *, error: str | None = "invalid_token") -> HTTPException:
    """401 with an RFC 6750 `WWW-Authenticate` challenge."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        description = reason.replace('"', "'")
        challenge += f', error="{error}", error_description="{description}"'
    return HTTPException(401, reason, {"WWW-Authenticate": challenge})


@lru_cache(maxsize=4)
def _compiled(routes: frozenset[str]) -> list[tuple[str, str, re.Pattern[str], int]]:
    """(method, template, regex, parameter count) of each rule, literal routes first."""
    compiled = []
    for route in routes:
        method, _, template = route.partition(" ")
        regex, _, convertors = compile_path(template)
        compiled.append((method, template, regex, len(convertors)))
    return sorted(compiled, key=lambda item: (item[3], item[1]))


def route_template(scope: MutableMapping[str, Any]) -> str | None:
    """`METHOD /path template` of the rule for the route serving `scope`; None when no rule fits.

    FastAPI may hand the route its template without the prefix its router was mounted at, so the
    rule is the one whose template matches the request path and ends with the route's own template.
    """
    own = getattr(scope.get("route"), "path_format", None)
    if own is None:
        return None
    root, path = scope.get("root_path", ""), scope["path"]
    path = path[len(root) :] if root and path.startswith(root) else path
    for method, template, regex, _ in _compiled(route_policy(scope["app"]).routes()):
        if method == scope["method"] and template.endswith(own) and regex.match(path):
            return f"{method} {template}"
    return None


def route_of(request: Request) -> str:
    """What the rules call the route serving `request` (its own template when no rule fits, which denies)."""
    own = getattr(request.scope.get("route"), "path_format", None)
    return route_template(request.scope) or f"{request.method} {own or request.url.path}"


@lru_cache(maxsize=8)
def _key_file(path: Path, mtime_ns: int) -> str:
    return path.read_text()


def _read_key(path: Path) -> str:
    try:
        return _key_file(path, path.stat().st_mtime_ns)
    except OSError as exc:
        raise InvalidCredentialsError(f"the JWT key file {path} cannot be read ({exc}); fix the API settings") from None


def _verification_key(token: str, settings: ApiSettings) -> tuple[Any, str]:
    """The key and algorithm to verify `token` with, chosen by the algorithm its header names."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidCredentialsError(f"the bearer token is not a valid JWT ({exc})") from None
    algorithm = header.get("alg")
    if algorithm == "HS256" and settings.jwt_hs256_secret is not None:
        return settings.jwt_hs256_secret.get_secret_value(), algorithm
    if algorithm == "RS256" and settings.jwt_jwks_path is not None:
        try:
            keys = jwt.PyJWKSet.from_json(_read_key(settings.jwt_jwks_path))
        except jwt.PyJWTError as exc:
            raise InvalidCredentialsError(f"the JWKS file has no usable key ({exc}); fix the API settings") from None
        kid = header.get("kid")
        for key in keys.keys:
            if kid is None or key.key_id == kid:
                return key.key, algorithm
        raise InvalidCredentialsError(f"no key with kid {kid!r} in the JWKS; the identity provider rotated keys?")
    if algorithm == "RS256" and settings.jwt_public_key_path is not None:
        return _read_key(settings.jwt_public_key_path), algorithm
    raise InvalidCredentialsError(f"JWTs signed with {algorithm!r} are not accepted here; use a configured algorithm")


def _names(value: Any) -> list[str]:
    """A claim's names: a list, or one string separated by spaces or commas."""
    if isinstance(value, str):
        return [name for name in value.replace(",", " ").split() if name]
    if isinstance(value, list):
        return [str(name) for name in value]
    return []


def principal_from_jwt(token: str, *, settings: ApiSettings | None = None) -> Principal:
    """The person a verified JWT names: `sub`, roles and groups from the configured claims, tenant."""
    settings = settings or get_api_settings()
    if not settings.jwt_enabled:
        raise InvalidCredentialsError("JWT bearer tokens are not accepted: no JWT key is configured")
    key, algorithm = _verification_key(token, settings)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidCredentialsError("the JWT has expired; sign in again") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidCredentialsError(f"the JWT was refused: {exc}") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidCredentialsError("the JWT's `sub` claim is empty; it must name the caller")
    roles = frozenset(Role(name) for name in _names(claims.get(settings.jwt_roles_claim)) if name in PEOPLE_ROLES)
    tenant = claims.get(settings.jwt_tenant_claim)
    return Principal(
        kind="user",
        id=subject,
        roles=roles,
        groups=frozenset(_names(claims.get(settings.jwt_groups_claim))),
        tenant=tenant if isinstance(tenant, str) and tenant else settings.jwt_default_tenant,
    )


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def authenticate(*, api_key: str | None, bearer_token: str | None) -> Principal:
    """The caller named by an API key or bearer token (operator token or JWT); InvalidCredentialsError if none."""
    if api_key:
        try:
            return identity.operator_for_token(token=api_key)
        except UnknownOperatorError:
            raise InvalidCredentialsError("the X-API-Key matches no operator") from None
    if not bearer_token:
        raise InvalidCredentialsError("no credentials")
    if _looks_like_jwt(bearer_token):
        return principal_from_jwt(bearer_token)
    try:
        return identity.operator_for_token(token=bearer_token)
    except UnknownOperatorError:
        raise InvalidCredentialsError("the bearer token matches no operator and is not a JWT") from None


def authorize_route(
    request: Request,
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The gate: the route's rule decides; the caller's principal (None on public routes)."""
    route = route_of(request)
    policy = route_policy(request.app)
    rule = policy.route_rule(route=route)
    if rule is not None and rule.public:
        return None
    if rule is None:
        raise HTTPException(403, policy.authorize_route(principal=None, route=route).reason)
    if not api_key and credentials is None:
        raise unauthorized("send `X-API-Key: <token>` or `Authorization: Bearer <token or JWT>`", error=None)
    try:
        principal = authenticate(api_key=api_key, bearer_token=credentials.credentials if credentials else None)
    except InvalidCredentialsError as exc:
        raise unauthorized(str(exc)) from None
    decision = policy.authorize_route(principal=principal, route=route)
    if not decision.allowed:
        _audit_denial(request, principal=principal, route=route, decision=decision)
        raise HTTPException(403, decision.reason)
    request.state.principal = principal
    return principal


def _audit_denial(request: Request, *, principal: Principal, route: str, decision: Any) -> None:
    """Record the denial in the audit trail; a database outage must not turn the 403 into a 500."""
    settings = getattr(request.app.state, "settings", None) or get_settings()
    try:
        timeout_s = settings.database.request_statement_timeout_s
        with db.connect(db.database_url(settings), statement_timeout_s=timeout_s) as conn, conn.transaction():
            route_policy(request.app).record_route_denial(conn, principal=principal, route=route, decision=decision)
    except psycopg.Error as exc:
        log.warning("could not audit the denial of %s for %s: %s", route, principal.id, exc)


Gate = Depends(authorize_route)
"""Put in a router's `dependencies=[...]`: every route of it passes the policy's route rules."""


def current_principal(principal: Annotated[Principal | None, Gate]) -> Principal:
    """The authenticated caller of a non-public route."""
    if principal is None:
        raise unauthorized("this route needs credentials; add it to `routes:` with roles, not `public`", error=None)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
"""The authenticated, authorized caller."""
