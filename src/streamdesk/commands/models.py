"""Records of the command contract (`schemas/command.v1.json`, `schemas/command_outcome.v1.json`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamdesk.contracts import utcnow

CommandStatus = Literal["issued", "confirmed", "failed", "escalated"]
"""`issued`: in the outbox (published or not); then confirmed by CDC, failed on a rejection, or escalated."""
KEY_COLUMN = "command_key"
"""The column a system of record fills with the idempotency key of the command that last changed a row."""


class RowChange(BaseModel):
    """One row a command changes: the columns to set, and the values it expects them to hold before."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str = Field(min_length=1)
    entity_type: str = Field(min_length=1)
    id: str = Field(min_length=1)
    set: dict[str, Any]
    expect: dict[str, Any] = Field(default_factory=dict)

    @property
    def entity_ref(self) -> str:
        """`<entity_type>:<id>`: how the confirmation names the row's entity."""
        return f"{self.entity_type}:{self.id}"


class Command(BaseModel):
    """A write the agent may carry out, as a system of record receives it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    idempotency_key: str = Field(min_length=1)
    system: str = Field(min_length=1)
    tool: str = Field(min_length=1)
    arguments: dict[str, Any]
    changes: list[RowChange] = Field(min_length=1)
    ticket_id: str
    tenant: str = "default"
    action_id: str | None = None
    issued_at: datetime = Field(default_factory=utcnow)

    @property
    def topic(self) -> str:
        """The per-system command topic."""
        return topic_for(self.system)

    def to_json(self) -> dict[str, Any]:
        """The payload of `command.<system>`."""
        return {"schema_version": 1, **self.model_dump(mode="json")}


class CommandOutcome(BaseModel):
    """What a system of record says of a command it refused (its applied changes come back through CDC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str = Field(min_length=1)
    system: str = Field(min_length=1)
    status: Literal["rejected"]
    reason: str
    decided_at: datetime = Field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        """The payload of `command.outcome`."""
        return {"schema_version": 1, **self.model_dump(mode="json")}


class TrackedCommand(BaseModel):
    """An outbox row: the command and where it stands."""

    model_config = ConfigDict(frozen=True)

    command: Command
    status: CommandStatus
    reason: str | None = None
    awaiting: list[str] = Field(default_factory=list)
    published_at: datetime | None = None
    resolved_at: datetime | None = None


OUTCOME_TOPIC = "command.outcome"


def topic_for(system: str) -> str:
    """`command.<system>`: the topic a system of record reads its commands from."""
    return f"command.{system}"
