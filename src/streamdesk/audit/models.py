"""Audit events (what the caller reports) and audit records (what the chain stores, with hashes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streamdesk.contracts import DataclassRecord, utcnow
from streamdesk.identity.models import Principal

GENESIS_HASH = "0" * 64
"""The `prev_hash` of the first record."""


class AuditAction(StrEnum):
    """What happened; one record per model action."""

    MODEL_CALL = "model_call"
    TOOL_CALL = "tool_call"
    RBAC_DECISION = "rbac_decision"
    GUARDRAIL = "guardrail"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL = "approval"
    REJECTION = "rejection"
    WRITE_EXECUTED = "write_executed"
    ANSWER_PUBLISHED = "answer_published"
    ANSWER_REVIEWED = "answer_reviewed"
    ESCALATION = "escalation"
    MODEL_PROMOTED = "model_promoted"
    MODEL_ROLLED_BACK = "model_rolled_back"


class AuditEvent(BaseModel):
    """One model action as the caller reports it: actors, versions, retrieval, tool, decision, trace."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: AuditAction
    ticket_id: str | None = None
    tenant: str = "default"
    customer_id: str | None = Field(default=None, description="The verified customer the agent acts for.")
    agent_id: str | None = Field(default=None, description="The agent's service identity, when it acted.")
    actor_id: str | None = Field(default=None, description="The principal who acted (person or agent).")
    actor_kind: str | None = None
    roles: list[str] = Field(default_factory=list)
    approver_id: str | None = None
    model: str | None = None
    model_version: str | None = None
    adapter_version: str | None = None
    prompt_version: str | None = None
    policy_version: str | None = None
    chunk_ids: list[str] = Field(default_factory=list, description="Retrieved chunk ids shown to the model.")
    access_filter: dict[str, Any] | None = Field(
        default=None, description="The document access filter retrieval applied."
    )
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    result_hash: str | None = Field(default=None, description="sha256 of the tool result's canonical JSON.")
    decision: str | None = None
    reason: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def for_principal(cls, principal: Principal, **fields: Any) -> AuditEvent:
        """An event whose actor fields (customer, agent, actor, roles, approver, tenant) come from `principal`."""
        actors: dict[str, Any] = {
            "tenant": principal.tenant,
            "customer_id": principal.customer_id,
            "agent_id": principal.id if principal.is_agent else None,
            "actor_id": principal.id,
            "actor_kind": principal.kind,
            "roles": principal.role_names,
            "approver_id": principal.approver,
        }
        actors.update(fields)
        return cls(**actors)


class AuditContent(AuditEvent):
    """What a record's hash covers: the event and when it was recorded."""

    recorded_at: datetime


REDACTED_FIELDS = ("arguments", "reason", "details")
"""Fields of an event that carry free text (tool arguments, reasons, details); PII is redacted before storing."""

CHAIN_FIELDS = ("seq", "prev_hash", "record_hash", "signature")
"""Fields of a record that bind it into the chain rather than describe the event."""


class AuditRecord(AuditContent):
    """An event as stored: its place in the chain and the hashes that bind it."""

    seq: int
    prev_hash: str
    record_hash: str
    signature: str

    @classmethod
    def from_row(cls, *, seq: int, content: str, prev_hash: str, record_hash: str, signature: str) -> AuditRecord:
        """Rebuild a record from its stored columns."""
        return cls(seq=seq, prev_hash=prev_hash, record_hash=record_hash, signature=signature, **json.loads(content))

    def to_json(self) -> dict[str, Any]:
        """The record as the `audit` topic and `audit export` carry it."""
        return self.model_dump(mode="json")

    def content(self) -> dict[str, Any]:
        """The part of the record its hash covers (everything but the chain fields)."""
        return self.model_dump(mode="json", exclude=set(CHAIN_FIELDS))


@dataclass(frozen=True)
class Checkpoint:
    """A signed (seq, record_hash) pair: the chain up to `seq` must end in `record_hash`.

    The head is one too: the signed pair of the chain's last record, moved with every append.
    """

    seq: int
    record_hash: str


@dataclass(frozen=True)
class VerifyReport(DataclassRecord):
    """What `verify` found: ok, how many records it checked, and the first broken record with the reason."""

    ok: bool
    checked: int
    checkpoints: int
    first_broken_seq: int | None = None
    reason: str | None = None
