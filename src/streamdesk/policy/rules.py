"""The rules file: roles to tool groups, each tool's kind, argument ownership and amount, and who may call
which HTTP route; parsed and checked."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from streamdesk.config import domain_pack
from streamdesk.identity.models import Role
from streamdesk.policy.config import PolicySettings, get_policy_settings
from streamdesk.policy.exceptions import InvalidRulesError
from streamdesk.policy.models import Permission, RouteRule, Rules

KINDS = ("read", "write")
RESOURCES = ("customer", "order")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PUBLIC = "public"


def _role(name: str, *, path: Path, where: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidRulesError(f"role {name!r} in {where} of {path} is unknown; use one of {known}") from None


def _route_rules(data: Mapping[str, Any], *, path: Path) -> dict[str, RouteRule]:
    """`routes:` (`METHOD /path` -> `public` or role and role-set names), with `role_sets:` expanded."""
    role_sets = {
        name: frozenset(_role(role, path=path, where=f"role set {name!r}") for role in roles or [])
        for name, roles in (data.get("role_sets") or {}).items()
    }
    rules: dict[str, RouteRule] = {}
    for route, spec in (data.get("routes") or {}).items():
        method, _, route_path = str(route).partition(" ")
        if method not in HTTP_METHODS or not route_path.startswith("/"):
            raise InvalidRulesError(
                f"route {route!r} in {path} is not `METHOD /path` with METHOD one of {', '.join(HTTP_METHODS)}"
            )
        if spec == PUBLIC:
            rules[route] = RouteRule(route=route, public=True)
            continue
        if not isinstance(spec, list):
            raise InvalidRulesError(f"route {route!r} in {path} must list roles or role sets, or say `{PUBLIC}`")
        roles: set[Role] = set()
        for entry in spec:
            roles |= role_sets[entry] if entry in role_sets else {_role(entry, path=path, where=f"route {route!r}")}
        rules[route] = RouteRule(route=route, roles=frozenset(roles))
    return rules


def _permission(name: str, spec: Mapping[str, Any], roles: frozenset[Role], *, path: Path) -> Permission:
    kind = spec.get("kind")
    if kind not in KINDS:
        raise InvalidRulesError(f"tool {name!r} in {path} has kind {kind!r}; use one of {', '.join(KINDS)}")
    owns = dict(spec.get("owns") or {})
    for argument, resource in owns.items():
        if resource not in RESOURCES:
            raise InvalidRulesError(
                f"tool {name!r} in {path} says {argument!r} owns {resource!r}; use one of {', '.join(RESOURCES)}"
            )
    amount = spec.get("amount")
    return Permission(
        tool_name=name,
        kind=kind,
        roles=roles,
        owns=owns,
        amount_argument=None if amount in (None, "derived") else str(amount),
        amount_derived=amount == "derived",
    )


def _yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidRulesError(f"rules file {path} is not valid YAML: {exc}") from None


def _merged(data: dict[str, Any], pack: Mapping[str, Any]) -> dict[str, Any]:
    """The rules with a domain pack's groups (its tools first) and tools added; the rules file wins a clash."""
    groups = dict(data.get("groups") or {})
    for name, tools in (pack.get("groups") or {}).items():
        groups[name] = [*tools, *(groups.get(name) or [])]
    return {**data, "groups": groups, "tools": {**(pack.get("tools") or {}), **(data.get("tools") or {})}}


@lru_cache(maxsize=4)
def _load_rules(path: Path, text: str, pack_path: Path, pack_text: str) -> Rules:
    data = _merged(_yaml(path, text), _yaml(pack_path, pack_text))
    groups: dict[str, list[str]] = data.get("groups") or {}
    tools: dict[str, Mapping[str, Any]] = data.get("tools") or {}
    holders: dict[str, set[Role]] = {name: set() for name in tools}
    for role_name, entries in (data.get("roles") or {}).items():
        role = _role(role_name, path=path, where="roles")
        for entry in entries:
            for tool in groups.get(entry, [entry]):
                if tool not in holders:
                    raise InvalidRulesError(
                        f"role {role_name!r} in {path} lists {tool!r}, which is neither a group nor a tool; "
                        "declare it under `tools:`"
                    )
                holders[tool].add(role)
    permissions = {
        name: _permission(name, spec or {}, frozenset(holders[name]), path=path) for name, spec in tools.items()
    }
    return Rules(
        version=str(data.get("version", "unversioned")),
        digest=hashlib.sha256((text + pack_text).encode()).hexdigest(),
        permissions=permissions,
        routes=_route_rules(data, path=path),
    )


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise InvalidRulesError(
            f"rules file {path} cannot be read ({exc}); set STREAMDESK_POLICY__RULES_PATH"
        ) from None


@lru_cache(maxsize=4)
def _read_packaged(path: Path) -> str:
    """A domain pack's RBAC file: it ships with the code, so it is read once (the operator's rules file is re-read)."""
    return _read(path)


def load_rules(*, settings: PolicySettings | None = None) -> Rules:
    """The rules file named by the settings with the domain pack's tools merged in, parsed and checked.

    Cached per file content.
    """
    settings = settings or get_policy_settings()
    pack_path: Path = domain_pack().rbac_path
    return _load_rules(settings.rules_path, _read(settings.rules_path), pack_path, _read_packaged(pack_path))
