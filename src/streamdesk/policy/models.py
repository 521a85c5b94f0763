"""Permissions loaded from the rules file, the decision on one tool call, and pending actions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict

from streamdesk.contracts import DataclassRecord
from streamdesk.identity.models import Principal, Role

ToolKind = Literal["read", "write"]
Resource = Literal["customer", "order"]
ActionStatus = Literal["pending", "approved", "rejected", "executed"]
OwnerLookup = Callable[[str], str | None]


class ToolCall(TypedDict):
    """One tool call to decide: who calls which tool, of which kind, with what arguments (`authorize` says the rest)."""

    principal: Principal
    tool_name: str
    tool_kind: str
    arguments: Mapping[str, Any]
    trusted_values: NotRequired[Iterable[Any] | None]
    amount: NotRequired[Any]
    owner_of: NotRequired[OwnerLookup | None]


"""Given an order id, the customer id that owns it, or None when unknown (which denies)."""


@dataclass(frozen=True)
class Permission:
    """What the rules say about one tool: its kind, who may call it, and its argument constraints."""

    tool_name: str
    kind: ToolKind
    roles: frozenset[Role]
    owns: dict[str, Resource] = field(default_factory=dict)
    amount_argument: str | None = None
    amount_derived: bool = False

    @property
    def moves_money(self) -> bool:
        """True when the tool carries an amount that limits apply to."""
        return self.amount_argument is not None or self.amount_derived


@dataclass(frozen=True)
class RouteRule:
    """Who may call one HTTP route (`METHOD /path`): anyone (`public`), or holders of one of `roles`."""

    route: str
    roles: frozenset[Role] = frozenset()
    public: bool = False


@dataclass(frozen=True)
class Rules:
    """The whole rules file: its version, a digest of its text, one permission per tool and one rule per route."""

    version: str
    digest: str
    permissions: dict[str, Permission]
    routes: dict[str, RouteRule] = field(default_factory=dict)

    @property
    def policy_version(self) -> str:
        """`<version>+<digest prefix>`: changes whenever the file does."""
        return f"{self.version}+{self.digest[:12]}"


@dataclass(frozen=True)
class Decision(DataclassRecord):
    """The verdict on one tool call: allowed or not, why, whether it must wait for approval, and which rule."""

    allowed: bool
    reason: str
    requires_approval: bool = False
    rule: str = ""
    policy_version: str = ""

    @property
    def outcome(self) -> str:
        """'denied', 'approval_required' or 'allowed'."""
        if not self.allowed:
            return "denied"
        return "approval_required" if self.requires_approval else "allowed"

    @property
    def may_execute_now(self) -> bool:
        """True when the call may run without waiting for anyone."""
        return self.allowed and not self.requires_approval

    def to_json(self) -> dict[str, Any]:
        """The decision as a JSON object, with its `outcome`."""
        return super().to_json() | {"outcome": self.outcome}


class PendingAction(BaseModel):
    """A high-risk write waiting for (or past) a supervisor's decision."""

    model_config = ConfigDict(frozen=True)

    id: str
    idempotency_key: str
    ticket_id: str
    tenant: str
    tool_name: str
    arguments: dict[str, Any]
    proposer: Principal
    reason: str
    status: ActionStatus
    decided_by: str | None = None
    decided_by_roles: list[str] | None = None
    decision_note: str | None = None
    created_at: datetime
    decided_at: datetime | None = None
    executed_at: datetime | None = None

    @property
    def is_approved(self) -> bool:
        """True once a supervisor approved it (whether or not it has executed since)."""
        return self.status in ("approved", "executed")
