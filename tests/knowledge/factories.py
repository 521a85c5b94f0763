"""Builders for document events and deterministic English-like prose."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from streamdesk.contracts import Access, DocumentEvent
from streamdesk.knowledge.embedding import Embedder

_VOCABULARY = (
    "account balance card payment refund transfer customer support agent policy order invoice delivery "
    "address shipping return exchange warranty product price discount coupon subscription renewal plan "
    "upgrade downgrade cancel request approval manager review process step verify identity document "
    "email phone branch office hours holiday weekend notice period fee charge limit daily monthly annual "
    "interest rate loan mortgage credit debit statement report error issue problem solution answer "
    "question team member service level agreement priority ticket status open closed pending resolved "
    "escalation security password reset login device mobile app website browser update version release"
)
WORDS = tuple(_VOCABULARY.split())


def prose(seed: int, *, paragraphs: int = 1, words: int = 150) -> str:
    """Deterministic paragraphs of `words` words each, in sentences of 8-16 words."""
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences, left = [], words
        while left > 0:
            size = min(left, rng.randint(8, 16))
            sentence = " ".join(rng.choice(WORDS) for _ in range(size))
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
            left -= size
        out.append(" ".join(sentences))
    return "\n\n".join(out)


def document_event(
    external_id: str,
    op: str = "upsert",
    version: list[int] | None = None,
    *,
    body: str = "",
    title: str = "A title",
    source: str = "kb",
    **fields: Any,
) -> DocumentEvent:
    """A document event with sensible defaults (version [1] unless a tombstone)."""
    if version is None:
        version = [] if op == "tombstone" else [1]
    if isinstance(fields.get("access"), dict):
        fields["access"] = Access(**fields["access"])
    return DocumentEvent(
        event_id=str(uuid.uuid4()),
        source=source,
        external_id=external_id,
        op=op,
        version=version,
        occurred_at=fields.pop("occurred_at", datetime(2026, 11, 23, tzinfo=UTC)),
        title=title,
        body=body,
        **fields,
    )


class ObservedEmbedder:
    """The real embedder, recording each model call's size and time; `before_call` runs before each."""

    def __init__(self, inner: Embedder, *, before_call: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.seconds = 0.0
        self.before_call = before_call

    def __getattr__(self, name: str) -> Any:
        """Everything but `embed` (model name, version, tokenizer, ...) is the inner embedder's."""
        return getattr(self.inner, name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.before_call is not None:
            self.before_call()
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started
