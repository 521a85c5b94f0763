"""The reply contract (`schemas/reply.v1.json`) and a delivery as the `deliveries` table keeps it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from streamdesk.contracts import Record, utcnow
from streamdesk.delivery.config import TicketStatus

ReplyKind = Literal["auto_reply", "accepted", "edited", "follow_up"]
DeliveryStatus = Literal["queued", "sending", "retrying", "delivered", "dead_lettered"]
REPLY_TOPIC = "reply"


class Reply(Record):
    """One message that may go out to the customer; `reply_id` is its idempotency key."""

    schema_version: Literal[1] = 1
    reply_id: str = Field(min_length=1, max_length=200)
    answer_id: str = Field(min_length=1)
    kind: ReplyKind
    source: str = Field(min_length=1)
    ticket_id: str = Field(min_length=1)
    tenant: str = Field(min_length=1)
    text: str = Field(min_length=1)
    ticket_status: TicketStatus | None = None
    action_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def topic_key(self) -> str:
        """The `reply` topic key: one ticket's replies stay in order."""
        return f"{self.source}:{self.ticket_id}"


class AnswerOnTopic(Record):
    """The fields of an `answer` topic event (schemas/answer.v1.json) the delivery worker needs."""

    model_config = Record.model_config | {"extra": "ignore"}

    answer_id: str
    source: str
    ticket_id: str
    tenant: str
    status: str
    text: str
    created_at: datetime

    def reply(self) -> Reply | None:
        """The reply an auto reply goes out as; None for drafts, escalations and answers awaiting approval."""
        if self.status != "auto_reply" or not self.text.strip():
            return None
        return Reply(
            reply_id=self.answer_id,
            answer_id=self.answer_id,
            kind="auto_reply",
            source=self.source,
            ticket_id=self.ticket_id,
            tenant=self.tenant,
            text=self.text,
            created_at=self.created_at,
        )


class Delivery(Record):
    """Where one reply stands: queued, sending, retrying, delivered or dead-lettered (with the helpdesk's reason)."""

    reply_id: str
    answer_id: str
    kind: ReplyKind
    source: str
    ticket_id: str
    tenant: str
    destination: str | None = None
    status: DeliveryStatus
    attempts: int
    reason: str | None = None
    remote_ref: str | None = None
    dead_letter_id: int | None = None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Delivery:
        """A delivery from its `deliveries` row (the reply payload left out)."""
        return cls(**{name: row[name] for name in cls.model_fields})
