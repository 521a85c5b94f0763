"""Ingest overhead: apply_documents on 64 ~150-word documents spends almost all its time in the model."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from streamdesk.contracts import DocumentEvent
from streamdesk.knowledge import store
from streamdesk.knowledge.embedding import Embedder
from tests.knowledge.factories import ObservedEmbedder


@pytest.mark.slow
@pytest.mark.perf
def test_apply_documents_overhead_is_small(conn: psycopg.Connection, embedder: Embedder, shared_data: Path) -> None:
    corpus = shared_data / "retrieval" / "tau2_banking_knowledge" / "corpus.jsonl"
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    picked = [r for r in rows if 120 <= len(r["text"].split()) <= 180][:64]
    events = [
        DocumentEvent(
            event_id=str(uuid.uuid4()),
            source="bench",
            external_id=r["_id"],
            op="upsert",
            version=[1],
            occurred_at=datetime.now(UTC),
            title=r["title"],
            body=r["text"],
        )
        for r in picked
    ]
    embedder.embed(["warm up"] * 8)
    timed = ObservedEmbedder(embedder)
    started = time.perf_counter()
    stats = store.apply_documents(conn, events, embedder=timed, chunk_tokens=230, chunk_overlap=32)
    conn.commit()
    elapsed = time.perf_counter() - started
    assert stats.upserted == 64 and stats.chunks_embedded == stats.chunks_written >= 64
    overhead = elapsed - timed.seconds
    print(f"\n{stats.chunks_written} chunks in {elapsed:.2f}s, model {timed.seconds:.2f}s, rest {overhead:.3f}s")
    assert timed.seconds / elapsed >= 0.8, f"everything but the model took {overhead:.2f}s of {elapsed:.2f}s"
