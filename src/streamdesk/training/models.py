"""Training records: registered adapter versions, the `model` and `retrain` topic payloads, live scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamdesk.contracts import Record

AdapterStatus = Literal["candidate", "promoted", "retired"]
ModelAction = Literal["candidate", "promoted", "rolled_back"]
RetrainReason = Literal["count", "schedule", "manual"]


class AdapterVersion(BaseModel):
    """One registered LoRA adapter: its lineage, data, metrics, gate report and status."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    version: str
    base_model: str
    parent: str | None
    dataset_digest: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any] | None
    status: AdapterStatus
    path: str
    created_at: datetime
    promoted_at: datetime | None = None
    retired_at: datetime | None = None


class RetrainRun(BaseModel):
    """One retrain request and how it went."""

    request_id: str
    reason: str
    status: str
    version: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    details: dict[str, Any]

    @property
    def seconds(self) -> float | None:
        """How long the run took, once finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class ModelEvent(Record):
    """A change to what the agent serves: a candidate registered, an adapter promoted or rolled back."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1)
    action: ModelAction
    version: str | None = Field(description="Adapter now serving (promoted, rolled_back) or registered; None: base.")
    previous: str | None = Field(default=None, description="The adapter serving before; None: the base model.")
    base_model: str = Field(min_length=1)
    dataset_digest: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    actor: str = Field(min_length=1)
    reason: str = ""
    occurred_at: datetime


class RetrainRequest(Record):
    """A request to train a new adapter: why, and what the pending data looked like."""

    schema_version: Literal[1] = 1
    request_id: str = Field(min_length=1)
    reason: RetrainReason
    pending_examples: int = Field(ge=0)
    desirable: int = Field(ge=0)
    undesirable: int = Field(ge=0)
    requested_by: str = Field(min_length=1)
    requested_at: datetime


@dataclass(frozen=True)
class LiveScore:
    """Live feedback on answers one adapter wrote: positive and negative signals."""

    version: str | None
    positive: int
    negative: int

    @property
    def total(self) -> int:
        """All signals counted."""
        return self.positive + self.negative

    @property
    def rate(self) -> float:
        """Share of positive signals (0 when none)."""
        return self.positive / self.total if self.total else 0.0
