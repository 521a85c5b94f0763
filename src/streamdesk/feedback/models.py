"""Feedback records (the `feedback` topic), the answers they are about, and the KTO examples they become."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from streamdesk.contracts import Record
from streamdesk.feedback.exceptions import InvalidFeedbackError

FeedbackKind = Literal["thumbs_up", "thumbs_down", "accepted", "edited", "rejected", "reopened", "csat"]
ExampleSource = Literal["draft", "edit", "gold"]
"""What an example's completion is: the agent's draft, a human edit, or a resolved ticket's gold step (bootstrap)."""


class FeedbackEvent(Record):
    """One signal about one answer: a thumb, a draft verdict (with the edit), a reopen, or a CSAT score."""

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=200, description="Unique per signal; redelivery is idempotent.")
    answer_id: str = Field(min_length=1, description="The answer the signal is about.")
    ticket_id: str = Field(min_length=1)
    kind: FeedbackKind
    rating: int | None = Field(default=None, ge=1, le=5, description="CSAT 1-5; only for kind 'csat'.")
    edited_text: str | None = Field(default=None, description="The text the human sent instead; only for 'edited'.")
    adapter_version: str | None = Field(default=None, description="The adapter that wrote the answer, if known.")
    customer_id: str | None = None
    annotator_id: str | None = Field(default=None, description="Who gave the signal (operator or customer id).")
    tenant: str = Field(default="default", min_length=1)
    occurred_at: datetime

    @model_validator(mode="after")
    def _fields_match_kind(self) -> FeedbackEvent:
        if (self.kind == "csat") != (self.rating is not None):
            raise InvalidFeedbackError(
                f"feedback {self.event_id!r} of kind {self.kind!r} has rating {self.rating!r}; "
                "send a rating 1-5 with kind 'csat' and none otherwise"
            )
        edited = self.kind == "edited"
        if edited != bool(self.edited_text and self.edited_text.strip()) or (
            not edited and self.edited_text is not None
        ):
            raise InvalidFeedbackError(
                f"feedback {self.event_id!r} of kind {self.kind!r} has edited_text {self.edited_text!r:.40}; "
                "send the edited text with kind 'edited' and none otherwise"
            )
        return self


@dataclass(frozen=True)
class AnswerContext:
    """What the label policy needs to know about an answer: its prompt, draft, ticket, customer and adapter."""

    answer_id: str
    ticket_id: str
    prompt: str
    completion: str
    answered_at: datetime
    adapter_version: str | None = None
    customer_id: str | None = None
    tenant: str = "default"


@dataclass(frozen=True)
class KtoExample:
    """One (prompt, completion, label) row for KTO, with its lineage back to the answer and the deciding signal."""

    answer_id: str
    source: ExampleSource
    ticket_id: str
    prompt: str
    completion: str
    label: bool
    adapter_version: str | None
    policy_version: str
    decided_by: str
    signal_ids: tuple[str, ...]
    customer_id: str | None = None
    annotator_id: str | None = None
    tenant: str = "default"
    content_digest: str = ""
    heldout: bool = False
    trained_in: str | None = None

    def to_kto(self, *, conversational: bool = True, lineage: bool = False) -> dict[str, Any]:
        """The row in TRL's KTO format: chat message lists (or plain text) and a boolean label."""
        if conversational:
            row: dict[str, Any] = {
                "prompt": [{"role": "user", "content": self.prompt}],
                "completion": [{"role": "assistant", "content": self.completion}],
                "label": self.label,
            }
        else:
            row = {"prompt": self.prompt, "completion": self.completion, "label": self.label}
        if lineage:
            row["lineage"] = {
                "answer_id": self.answer_id,
                "source": self.source,
                "ticket_id": self.ticket_id,
                "adapter_version": self.adapter_version,
                "policy_version": self.policy_version,
                "decided_by": self.decided_by,
                "signal_ids": list(self.signal_ids),
                "content_digest": self.content_digest,
            }
        return row


@dataclass(frozen=True)
class ClassBalance:
    """How many desirable and undesirable examples a set holds, and who contributed them."""

    desirable: int
    undesirable: int
    by_source: dict[str, int]
    top_customers: dict[str, int]
    top_annotators: dict[str, int]

    @property
    def total(self) -> int:
        """All examples."""
        return self.desirable + self.undesirable

    @property
    def minority_fraction(self) -> float:
        """The smaller class's share of all examples (0 when empty)."""
        return min(self.desirable, self.undesirable) / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {
            "total": self.total,
            "desirable": self.desirable,
            "undesirable": self.undesirable,
            "minority_fraction": round(self.minority_fraction, 4),
            "by_source": self.by_source,
            "top_customers": self.top_customers,
            "top_annotators": self.top_annotators,
        }
