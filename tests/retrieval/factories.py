"""Builders for retrieval tests: document events, and writing them through the real store and embedder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from streamdesk import db
from streamdesk.config import get_settings
from streamdesk.contracts import Access, DocumentEvent
from streamdesk.knowledge import embedders
from streamdesk.knowledge import store as knowledge_store

_counter = iter(range(1, 10**9))


def document(
    external_id: str,
    title: str,
    body: str,
    *,
    level: str = "public",
    groups: Sequence[str] = (),
    tenant: str = "default",
    source: str = "kb",
    doc_type: str = "kb_article",
    occurred_at: datetime | None = None,
    version: int = 1,
    op: str = "upsert",
) -> DocumentEvent:
    """A document event as a connector would publish it."""
    return DocumentEvent(
        event_id=f"ev-{next(_counter)}",
        source=source,
        external_id=external_id,
        op=op,
        version=[version],
        occurred_at=occurred_at or datetime(2026, 1, 1, tzinfo=UTC),
        title=title,
        body=body,
        doc_type=doc_type,
        tenant=tenant,
        access=Access(level=level, groups=sorted(groups)),
    )


def apply(conn: psycopg.Connection, events: Sequence[DocumentEvent], *, embedder: Any | None = None) -> Any:
    """Apply `events` with the real store, the ingest chunking settings and the real embedder."""
    ingest = get_settings().ingest
    return knowledge_store.apply_documents(
        conn,
        events,
        embedder=embedder or embedders.get_embedder(),
        chunk_tokens=ingest.chunk_tokens,
        chunk_overlap=ingest.chunk_overlap,
    )


def store(url: str, events: Sequence[DocumentEvent], *, embedder: Any | None = None) -> Any:
    """Apply `events` with the real store and embedder, committed."""
    with db.connect(url) as conn, conn.transaction():
        return apply(conn, events, embedder=embedder)
