"""The document store: version-ordered, idempotent writes of documents and their embedded chunks.

`apply_documents` works in two passes inside the caller's transaction. The first reads the stored
rows without locks, chunks the winning upserts and embeds every chunk text the store does not know
yet (one model call for the whole batch). The second locks the batch's keys (advisory locks in key
order, then `SELECT ... FOR UPDATE`), decides again against what is stored now, and writes. A
concurrent writer that slipped in between only costs a re-decision (and, rarely, a second embedding
call), never a wrong write; row locks are held for the short write pass, not for the model call.
Chunk rows whose text, offsets and access scope did not change are left alone (no HNSW churn), so a
chunk's `occurred_at` is when that chunk last changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from streamdesk.contracts import DocumentEvent, FoldStats, SourcePosition, events_by_key, tombstone_applies
from streamdesk.knowledge.chunking import Chunk, chunk_text
from streamdesk.knowledge.embedding import embedding_input
from streamdesk.knowledge.exceptions import InvalidDocumentEventError

if TYPE_CHECKING:
    from streamdesk.knowledge.embedding import TextEmbedder

log = logging.getLogger(__name__)

Key = tuple[str, str]
LOCK_NAMESPACE = 0x5D0C
"""First key of the transaction-scoped advisory locks taken on documents (second: a hash of the key)."""

_warned_truncation = False


@dataclass
class DocumentStats(FoldStats):
    """What one `apply_documents` call did; upserted + deleted + stale + unchanged = events given."""

    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0


@dataclass(frozen=True)
class _StoredDocument:
    version: list[int]
    deleted: bool
    content_hash: str | None
    scope: tuple[Any, ...]
    language: str | None
    metadata: dict[str, Any]
    chunk_count: int
    position: SourcePosition | None = None


@dataclass(frozen=True)
class _Prepared:
    """A winning upsert's content: its hash, chunks, embedder inputs and chunk hashes."""

    content_hash: str
    chunks: list[Chunk]
    inputs: list[str]
    hashes: list[str]


@dataclass
class _Plan:
    """The rows one pass would write, and the counts it would report."""

    stats: DocumentStats = field(default_factory=DocumentStats)
    documents: list[tuple[Any, ...]] = field(default_factory=list)
    tombstones: list[tuple[Any, ...]] = field(default_factory=list)
    trims: list[tuple[str, str, int]] = field(default_factory=list)
    chunks: list[tuple[DocumentEvent, Chunk, str, str]] = field(default_factory=list)

    def texts_by_hash(self) -> dict[str, str]:
        return {content_hash: text for _, _, content_hash, text in self.chunks}


_SELECT_DOCUMENTS = """
    SELECT source, external_id, version, deleted, content_hash, url, doc_type, tenant, access_level,
           access_groups, language, metadata, chunk_count, source_position
    FROM documents
    WHERE (source, external_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""
_SELECT_CHUNKS = """
    SELECT source, external_id, chunk_no, content_hash, char_start, char_end, token_count
    FROM chunks
    WHERE (source, external_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""
_LOCK_KEYS = "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int4[]) AS k"
_SELECT_EMBEDDINGS = (
    "SELECT DISTINCT ON (content_hash) content_hash, embedding FROM chunks WHERE content_hash = ANY(%s)"
)
_UPSERT_DOCUMENT = """
    INSERT INTO documents (source, external_id, version, deleted, event_id, title, url, doc_type, language,
                           tenant, access_level, access_groups, content_hash, chunk_count, metadata,
                           occurred_at, source_position, updated_at)
    VALUES (%s, %s, %s, false, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
    ON CONFLICT (source, external_id) DO UPDATE SET
        version = EXCLUDED.version, deleted = false, event_id = EXCLUDED.event_id, title = EXCLUDED.title,
        url = EXCLUDED.url, doc_type = EXCLUDED.doc_type, language = EXCLUDED.language,
        tenant = EXCLUDED.tenant, access_level = EXCLUDED.access_level,
        access_groups = EXCLUDED.access_groups, content_hash = EXCLUDED.content_hash,
        chunk_count = EXCLUDED.chunk_count, metadata = EXCLUDED.metadata,
        occurred_at = EXCLUDED.occurred_at,
        source_position = COALESCE(EXCLUDED.source_position, documents.source_position), updated_at = now()
"""
_TOMBSTONE_DOCUMENT = """
    INSERT INTO documents (source, external_id, version, deleted, event_id, tenant, occurred_at, source_position,
                           updated_at)
    VALUES (%s, %s, %s, true, %s, %s, %s, %s, now())
    ON CONFLICT (source, external_id) DO UPDATE SET
        version = EXCLUDED.version, deleted = true, event_id = EXCLUDED.event_id, content_hash = NULL,
        chunk_count = 0, occurred_at = EXCLUDED.occurred_at,
        source_position = COALESCE(EXCLUDED.source_position, documents.source_position), updated_at = now()
"""
_TRIM_CHUNKS = """
    DELETE FROM chunks AS c
    USING unnest(%s::text[], %s::text[], %s::int[]) AS k(source, external_id, keep)
    WHERE c.source = k.source AND c.external_id = k.external_id AND c.chunk_no >= k.keep
"""
_UPSERT_CHUNK = """
    INSERT INTO chunks (source, external_id, chunk_no, title, text, char_start, char_end, token_count,
                        content_hash, embedding, embedding_model, embedding_version, url, doc_type, tenant,
                        access_level, access_groups, occurred_at, updated_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %b, %s, %s, %s, %s, %s, %s, %s, %s, now())
    ON CONFLICT (source, external_id, chunk_no) DO UPDATE SET
        title = EXCLUDED.title, text = EXCLUDED.text, char_start = EXCLUDED.char_start,
        char_end = EXCLUDED.char_end, token_count = EXCLUDED.token_count,
        content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding,
        embedding_model = EXCLUDED.embedding_model, embedding_version = EXCLUDED.embedding_version,
        url = EXCLUDED.url, doc_type = EXCLUDED.doc_type, tenant = EXCLUDED.tenant,
        access_level = EXCLUDED.access_level, access_groups = EXCLUDED.access_groups,
        occurred_at = EXCLUDED.occurred_at, updated_at = now()
"""


def apply_documents(
    conn: psycopg.Connection,
    events: Sequence[DocumentEvent],
    *,
    embedder: TextEmbedder,
    chunk_tokens: int,
    chunk_overlap: int,
) -> DocumentStats:
    """Apply a batch of document events in version order; the caller commits."""
    by_key: dict[Key, list[DocumentEvent]] = events_by_key(
        events, key=lambda event: (event.source, event.external_id), invalid=InvalidDocumentEventError
    )
    if not by_key:
        return DocumentStats()
    keys = sorted(by_key)
    prepared: dict[int, _Prepared] = {}

    def prepare(event: DocumentEvent) -> _Prepared:
        if id(event) not in prepared:
            prepared[id(event)] = _prepare(event, embedder=embedder, max_tokens=chunk_tokens, overlap=chunk_overlap)
        return prepared[id(event)]

    with conn.transaction() if conn.autocommit else nullcontext():
        stored, stored_chunks = _read_state(conn, keys, lock=False)
        plan = _plan(by_key, stored, stored_chunks, prepare=prepare)
        vectors: dict[str, Any] = {}
        embedded = _fill_embeddings(conn, plan.texts_by_hash(), vectors, embedder=embedder)
        stored, stored_chunks = _read_state(conn, keys, lock=True)
        plan = _plan(by_key, stored, stored_chunks, prepare=prepare)
        embedded += _fill_embeddings(conn, plan.texts_by_hash(), vectors, embedder=embedder)
        _write(conn, plan, vectors, embedder=embedder)
    stats = plan.stats
    stats.chunks_embedded = embedded
    stats.chunks_reused = max(0, stats.chunks_reused - embedded)
    return stats


def document_hash(event: DocumentEvent, *, embedder: TextEmbedder, chunk_tokens: int, chunk_overlap: int) -> str:
    """Hash of everything a document's chunks are derived from: text, model and chunking."""
    material = [event.title, event.body, embedder.model_name, embedder.version, chunk_tokens, chunk_overlap]
    return _sha256(material)


def chunk_hash(text: str, *, embedder: TextEmbedder) -> str:
    """Hash of one embedder input under the embedder's model and version."""
    return _sha256([embedder.model_name, embedder.version, text])


def _sha256(material: list[Any]) -> str:
    return hashlib.sha256(json.dumps(material, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def _prepare(event: DocumentEvent, *, embedder: TextEmbedder, max_tokens: int, overlap: int) -> _Prepared:
    _warn_if_truncated(event.title, embedder=embedder, max_tokens=max_tokens)
    chunks = chunk_text(event.body, tokenizer=embedder.tokenizer, max_tokens=max_tokens, overlap=overlap)
    inputs = [embedding_input(event.title, chunk.text) for chunk in chunks]
    return _Prepared(
        content_hash=document_hash(event, embedder=embedder, chunk_tokens=max_tokens, chunk_overlap=overlap),
        chunks=chunks,
        inputs=inputs,
        hashes=[chunk_hash(text, embedder=embedder) for text in inputs],
    )


def _warn_if_truncated(title: str, *, embedder: TextEmbedder, max_tokens: int) -> None:
    """Warn once per process when a chunk plus its title can exceed what the model reads."""
    global _warned_truncation
    if _warned_truncation:
        return
    budget = embedder.max_seq_length - 2
    title_tokens = len(embedder.tokenizer.tokenize(title))
    if max_tokens + title_tokens > budget:
        _warned_truncation = True
        log.warning(
            "chunk_tokens=%d plus a %d-token title exceeds %s's max_seq_length=%d: chunk tails are not "
            "embedded; lower STREAMDESK_INGEST__CHUNK_TOKENS to about %d",
            max_tokens,
            title_tokens,
            embedder.model_name,
            embedder.max_seq_length,
            max(100, budget - 24),
        )


def _lock_key(key: Key) -> int:
    digest = hashlib.blake2b(f"{key[0]}\x00{key[1]}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _read_state(
    conn: psycopg.Connection, keys: list[Key], *, lock: bool
) -> tuple[dict[Key, _StoredDocument], dict[Key, dict[int, tuple[str, int, int, int]]]]:
    """The stored document rows and chunk fingerprints of `keys` (locked when `lock`), in one round trip."""
    sources, external_ids = [k[0] for k in keys], [k[1] for k in keys]
    with conn.pipeline():
        if lock:
            conn.execute(_LOCK_KEYS, (LOCK_NAMESPACE, sorted({_lock_key(k) for k in keys})))
        documents = conn.execute(_SELECT_DOCUMENTS + (" FOR UPDATE" if lock else ""), (sources, external_ids))
        chunks = conn.execute(_SELECT_CHUNKS, (sources, external_ids))
    stored = {
        (row[0], row[1]): _StoredDocument(
            version=list(row[2]),
            deleted=row[3],
            content_hash=row[4],
            scope=(row[5], row[6], row[7], row[8], list(row[9])),
            language=row[10],
            metadata=row[11],
            chunk_count=row[12],
            position=None if row[13] is None else SourcePosition(**row[13]),
        )
        for row in documents.fetchall()
    }
    stored_chunks: dict[Key, dict[int, tuple[str, int, int, int]]] = {}
    for source, external_id, chunk_no, content_hash, start, end, tokens in chunks.fetchall():
        stored_chunks.setdefault((source, external_id), {})[chunk_no] = (content_hash, start, end, tokens)
    return stored, stored_chunks


def _resolve(
    events: list[DocumentEvent], stored: _StoredDocument | None
) -> tuple[DocumentEvent | None, list[int], int, int]:
    """The event whose state wins over `stored`, the version it leaves, the stale and the no-op events.

    Events are folded in batch order: an upsert applies above the current version, a delete at or
    above it, a tombstone at it; at equal versions within the batch the later event wins. Events
    superseded within the batch count as stale.
    """
    version = stored.version if stored else None
    deleted = stored.deleted if stored else False
    position = stored.position if stored else None
    winner: DocumentEvent | None = None
    applied = stale = noops = 0
    for event in events:
        tie = event.version == version
        if event.op == "upsert":
            applies = version is None or event.version > version or (tie and winner is not None)
            new_version, new_deleted = event.version, False
        elif event.op == "delete":
            applies = version is None or event.version > version or (tie and (winner is not None or not deleted))
            new_version, new_deleted = event.version, True
        else:
            applies = version is None or (not deleted and tombstone_applies(stored=position, tombstone=event.position))
            new_version, new_deleted = (version if version is not None else [0]), True
        if applies:
            winner, version, deleted = event, new_version, new_deleted
            position = event.position or position
            applied += 1
        elif event.op == "tombstone" or (event.op == "delete" and tie):
            noops += 1
        else:
            stale += 1
    return winner, version or [], stale + max(0, applied - 1), noops


def _plan(
    by_key: dict[Key, list[DocumentEvent]],
    stored: dict[Key, _StoredDocument],
    stored_chunks: dict[Key, dict[int, tuple[str, int, int, int]]],
    *,
    prepare: Callable[[DocumentEvent], _Prepared],
) -> _Plan:
    """Decide every key of the batch against the stored state."""
    plan = _Plan()
    for key in sorted(by_key):
        current = stored.get(key)
        winner, version, stale, noops = _resolve(by_key[key], current)
        plan.stats.stale += stale
        plan.stats.unchanged += noops
        if winner is None:
            continue
        if winner.op != "upsert":
            plan.stats.deleted += 1
            plan.tombstones.append(
                (*key, version, winner.event_id, winner.tenant, winner.occurred_at, _position(winner))
            )
            if stored_chunks.get(key):
                plan.trims.append((*key, 0))
            continue
        content = prepare(winner)
        scope = (winner.url, winner.doc_type, winner.tenant, winner.access.level, list(winner.access.groups))
        same_scope = current is not None and not current.deleted and current.scope == scope
        if (
            current is not None
            and same_scope
            and current.content_hash == content.content_hash
            and (current.language, current.metadata) == (winner.language, winner.metadata)
        ):
            plan.stats.unchanged += 1
            plan.documents.append(_document_row(winner, content.content_hash, current.chunk_count))
            continue
        plan.stats.upserted += 1
        plan.documents.append(_document_row(winner, content.content_hash, len(content.chunks)))
        existing = stored_chunks.get(key, {}) if same_scope else {}
        for chunk, text, content_hash in zip(content.chunks, content.inputs, content.hashes, strict=True):
            fingerprint = (content_hash, chunk.char_start, chunk.char_end, chunk.token_count)
            if existing.get(chunk.chunk_no) != fingerprint:
                plan.chunks.append((winner, chunk, content_hash, text))
        plan.stats.chunks_reused += len(content.chunks)
        if any(chunk_no >= len(content.chunks) for chunk_no in stored_chunks.get(key, {})):
            plan.trims.append((*key, len(content.chunks)))
    plan.stats.chunks_written = len(plan.chunks)
    return plan


def _document_row(event: DocumentEvent, content_hash: str, chunk_count: int) -> tuple[Any, ...]:
    return (
        event.source,
        event.external_id,
        event.version,
        event.event_id,
        event.title,
        event.url,
        event.doc_type,
        event.language,
        event.tenant,
        event.access.level,
        list(event.access.groups),
        content_hash,
        chunk_count,
        Jsonb(event.metadata),
        event.occurred_at,
        _position(event),
    )


def _position(event: DocumentEvent) -> Jsonb | None:
    return None if event.position is None else Jsonb(event.position.to_json())


def _fill_embeddings(
    conn: psycopg.Connection, texts: dict[str, str], vectors: dict[str, Any], *, embedder: TextEmbedder
) -> int:
    """Complete `vectors` for `texts` (by hash): stored embeddings first, then one model call; return its size."""
    missing = [h for h in texts if h not in vectors]
    if not missing:
        return 0
    with conn.cursor(binary=True) as cur:
        for content_hash, embedding in cur.execute(_SELECT_EMBEDDINGS, (missing,)):
            vectors[content_hash] = embedding
    missing = [h for h in missing if h not in vectors]
    if missing:
        for content_hash, vector in zip(missing, embedder.embed([texts[h] for h in missing]), strict=True):
            vectors[content_hash] = vector
    return len(missing)


def _write(conn: psycopg.Connection, plan: _Plan, vectors: dict[str, Any], *, embedder: TextEmbedder) -> None:
    """Write the plan's rows in one pipeline: documents, tombstones, chunk trims, chunk upserts."""
    with conn.pipeline(), conn.cursor() as cur:
        if plan.documents:
            cur.executemany(_UPSERT_DOCUMENT, plan.documents)
        if plan.tombstones:
            cur.executemany(_TOMBSTONE_DOCUMENT, plan.tombstones)
        if plan.trims:
            cur.execute(_TRIM_CHUNKS, [list(column) for column in zip(*plan.trims, strict=True)])
        if plan.chunks:
            cur.executemany(_UPSERT_CHUNK, _chunk_rows(plan, vectors, embedder=embedder))


def _chunk_rows(plan: _Plan, vectors: dict[str, Any], *, embedder: TextEmbedder) -> Iterator[tuple[Any, ...]]:
    for event, chunk, content_hash, _ in plan.chunks:
        yield (
            event.source,
            event.external_id,
            chunk.chunk_no,
            event.title,
            chunk.text,
            chunk.char_start,
            chunk.char_end,
            chunk.token_count,
            content_hash,
            vectors[content_hash],
            embedder.model_name,
            embedder.version,
            event.url,
            event.doc_type,
            event.tenant,
            event.access.level,
            list(event.access.groups),
            event.occurred_at,
        )
