"""Principals: a person with roles, or the agent's service identity bound to one verified customer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamdesk.identity.exceptions import InvalidPrincipalError

PrincipalKind = Literal["user", "agent"]


class Role(StrEnum):
    """What a principal may do; people hold the first five, the agent's service identity the last."""

    VIEWER = "viewer"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    AUDITOR = "auditor"
    SERVICE_AGENT = "service_agent"


APPROVER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
"""Roles that may approve or reject a pending action."""


class PrincipalSpec(NamedTuple):
    """The parts of a principal spec: `user:ID[?roles=a,b&groups=c&tenant=t]` or `agent:CUSTOMER_ID[?tenant=t]`."""

    kind: PrincipalKind
    ident: str
    roles: frozenset[str]
    groups: frozenset[str]
    tenant: str

    @classmethod
    def parse(cls, spec: str) -> PrincipalSpec:
        """The parts of `spec` (CLI and test shorthand); a malformed spec or an unknown option is refused."""
        head, _, query = spec.partition("?")
        kind, sep, ident = head.partition(":")
        if not sep or kind not in ("user", "agent") or not ident:
            raise InvalidPrincipalError(
                f"principal {spec!r} is not `user:ID[?roles=..&groups=..&tenant=..]` or `agent:CUSTOMER_ID`"
            )
        params = {key: ",".join(values) for key, values in parse_qs(query, strict_parsing=bool(query)).items()}
        unknown = set(params) - {"roles", "groups", "tenant"}
        if unknown:
            raise InvalidPrincipalError(
                f"principal {spec!r} has unknown option(s) {sorted(unknown)}; use roles, groups, tenant "
                "as in `user:ID?roles=..&groups=..&tenant=..`"
            )

        def names(key: str) -> frozenset[str]:
            return frozenset(n.strip() for n in params.get(key, "").split(",") if n.strip())

        return cls(
            kind="agent" if kind == "agent" else "user",
            ident=ident,
            roles=names("roles"),
            groups=names("groups"),
            tenant=params.get("tenant") or "default",
        )


class PrincipalBase(BaseModel):
    """What every domain knows of who acts: kind, id, roles, groups, tenant, and the customer an agent acts for.

    `Principal` below is the one concrete type every domain uses (roles checked against `Role`); code that only
    reads who acts (retrieval's access scope, the audit actor) takes this base.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PrincipalKind
    id: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    tenant: str = Field(default="default", min_length=1)
    customer_id: str | None = None

    @property
    def role_names(self) -> list[str]:
        """The roles as sorted strings (stable for logs and audit records)."""
        return sorted(str(role) for role in self.roles)

    @property
    def is_agent(self) -> bool:
        """True for the agent's service identity."""
        return self.kind == "agent"

    def describe(self) -> str:
        """A short label for logs and the audit trail."""
        if self.is_agent:
            return f"agent for customer {self.customer_id} (tenant {self.tenant})"
        return f"user {self.id} roles={self.role_names} groups={sorted(self.groups)} (tenant {self.tenant})"


class Principal(PrincipalBase):
    """Who acts: kind, id, roles, groups and tenant; the agent identity also names its verified customer."""

    roles: frozenset[Role] = frozenset()
    approver: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _agent_role_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "agent" and not data.get("roles"):
            return {**data, "roles": frozenset({Role.SERVICE_AGENT})}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Principal:
        if self.kind == "agent":
            if not self.customer_id:
                raise InvalidPrincipalError(
                    f"agent principal {self.id!r} has no customer_id; build it with agent_for_customer(customer_id)"
                )
            if self.roles != {Role.SERVICE_AGENT}:
                raise InvalidPrincipalError(
                    f"agent principal {self.id!r} has roles {self.role_names}; it must hold exactly service_agent"
                )
        elif Role.SERVICE_AGENT in self.roles:
            raise InvalidPrincipalError(
                f"user {self.id!r} holds service_agent; that role belongs to the agent identity only"
            )
        return self

    @property
    def can_approve(self) -> bool:
        """True for a person holding supervisor or admin."""
        return self.kind == "user" and bool(APPROVER_ROLES & set(self.roles))

    def has_any_role(self, roles: Iterable[Role | str]) -> bool:
        """True when the principal holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)

    def to_json(self) -> dict[str, Any]:
        """The principal as a JSON object with sorted roles and groups."""
        return {**self.model_dump(mode="json"), "roles": self.role_names, "groups": sorted(self.groups)}

    @classmethod
    def parse(cls, spec: str) -> Principal:
        """`user:ID[?roles=a,b&groups=c&tenant=t]` or `agent:CUSTOMER_ID[?tenant=t]` (CLI and test shorthand)."""
        parts = PrincipalSpec.parse(spec)
        if parts.kind == "agent":
            return agent_for_customer(parts.ident, tenant=parts.tenant, agent_id=f"agent-for-{parts.ident}")
        unknown_roles = parts.roles - {role.value for role in Role}
        if unknown_roles:
            raise InvalidPrincipalError(
                f"principal {spec!r} names unknown role(s) {sorted(unknown_roles)}; "
                f"use {', '.join(r.value for r in Role)}"
            )
        roles = frozenset(Role(name) for name in parts.roles)
        return cls(kind="user", id=parts.ident, roles=roles, groups=parts.groups, tenant=parts.tenant)


def agent_for_customer(
    customer_id: str, *, tenant: str = "default", agent_id: str = "streamdesk-agent", groups: Iterable[str] = ()
) -> Principal:
    """The agent's service identity acting for the ticket's verified customer `customer_id`."""
    if not customer_id:
        raise InvalidPrincipalError("customer_id is empty; verify the ticket's customer before acting for them")
    return Principal(
        kind="agent",
        id=agent_id,
        roles=frozenset({Role.SERVICE_AGENT}),
        groups=frozenset(groups),
        tenant=tenant,
        customer_id=customer_id,
    )


class StoredOperator(BaseModel):
    """An operator kept in the `operators` table (never their token: only its SHA-256 is stored)."""

    model_config = ConfigDict(frozen=True)

    operator_id: str
    roles: list[Role]
    groups: list[str] = Field(default_factory=list)
    tenant: str = "default"
    created_at: datetime
    revoked_at: datetime | None = None

    def principal(self) -> Principal:
        """The person this operator is, as every domain sees them."""
        return Principal(
            kind="user",
            id=self.operator_id,
            roles=frozenset(self.roles),
            groups=frozenset(self.groups),
            tenant=self.tenant,
        )
