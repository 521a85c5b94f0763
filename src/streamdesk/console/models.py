"""What the console pages show: drafts with their ticket and citations, dead letters, lag."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streamdesk.agent.answers import Answer

VERDICT_KINDS: dict[str, str] = {"accept": "accepted", "edit": "edited", "reject": "rejected"}
"""The feedback kind each review button records."""


@dataclass(frozen=True)
class Citation:
    """A passage a draft cites: its chunk id and the document it comes from (title, source, url when known)."""

    chunk_id: str
    document_id: str
    source: str
    title: str
    url: str | None = None
    found: bool = True


@dataclass(frozen=True)
class Draft:
    """A draft answer awaiting review, with the ticket it answers and the documents it cites."""

    answer: Answer
    subject: str
    body: str
    requester: str | None
    citations: list[Citation] = field(default_factory=list)
    earlier: list[dict[str, Any]] = field(default_factory=list)
    """The conversation before the message this draft answers: role, text, the agent turn's decision."""

    @property
    def ticket_ref(self) -> str:
        """`<source>:<ticket_id>`: the ticket id of the audit trail."""
        return f"{self.answer.source}:{self.answer.ticket_id}"


@dataclass(frozen=True)
class DeadLetterRow:
    """A message the ingest path could not use: where it came from, why, and the start of its bytes."""

    id: int
    topic: str
    partition: int
    offset: int
    stage: str
    error_type: str
    reason: str
    preview: str
    created_at: datetime


@dataclass(frozen=True)
class IngestHealth:
    """Consumer lag per topic (or why it is unknown), store counts and the latest dead letters."""

    lag: dict[str, int]
    lag_error: str | None
    counts: dict[str, Any]
    dead_letters: list[DeadLetterRow]

    @property
    def total_lag(self) -> int:
        """Messages not yet processed, over all topics."""
        return sum(self.lag.values())


@dataclass(frozen=True)
class AdapterLineage:
    """Which feedback trained one adapter, which answers it wrote, and its promote/rollback history."""

    version: str
    runs: list[str] = field(default_factory=list)
    examples: int = 0
    desirable: int = 0
    gold: int = 0
    signals: int = 0
    signal_ids: list[str] = field(default_factory=list)
    answers: int = 0
    recent_answers: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
