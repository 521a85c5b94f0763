"""Semantic answer cache: keyed by query-embedding similarity, the principal's scope and the knowledge version.

An entry is served only to a principal whose scope fingerprint is identical (so nobody sees an answer
built from chunks outside their scope), under the same knowledge version (the active embedding space),
and within the TTL. A trigger on `documents` deletes every entry citing a document that changes or is
deleted (migration 0003); a cut-over to a new embedding space drops the entries of the old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from streamdesk.identity.models import PrincipalBase
from streamdesk.retrieval import access, migration
from streamdesk.retrieval.config import RetrievalSettings, get_retrieval_settings


@dataclass(frozen=True)
class CachedAnswer:
    """A stored answer, the query it answered, and how similar that query is to the one asked now."""

    id: int
    query: str
    answer: dict[str, Any]
    cited_documents: list[str]
    similarity: float
    created_at: datetime


def knowledge_version(conn: psycopg.Connection) -> str:
    """The version cached answers are keyed by: the active embedding space."""
    return migration.active_space(conn).name


def lookup(
    *,
    conn: psycopg.Connection,
    query_vector: np.ndarray,
    principal: PrincipalBase,
    settings: RetrievalSettings | None = None,
) -> CachedAnswer | None:
    """The cached answer to the most similar earlier query within the principal's exact scope, if similar enough."""
    settings = settings or get_retrieval_settings()
    row = conn.execute(
        """
        SELECT id, query, answer, cited_documents, 1 - (embedding <=> %(q)s) AS similarity, created_at
        FROM answer_cache
        WHERE scope_key = %(scope)s AND knowledge_version = %(version)s
          AND created_at > now() - make_interval(secs => %(ttl)s)
        ORDER BY embedding <=> %(q)s LIMIT 1
        """,
        {
            "q": np.asarray(query_vector, dtype=np.float32),
            "scope": access.scope_key(principal, settings=settings),
            "version": knowledge_version(conn),
            "ttl": settings.cache_ttl_s,
        },
    ).fetchone()
    if row is None or row[4] < settings.cache_similarity:
        return None
    conn.execute("UPDATE answer_cache SET hits = hits + 1, last_hit_at = now() WHERE id = %s", (row[0],))
    return CachedAnswer(row[0], row[1], row[2], list(row[3]), float(row[4]), row[5])


def store(
    *,
    conn: psycopg.Connection,
    query: str,
    query_vector: np.ndarray,
    principal: PrincipalBase,
    answer: dict[str, Any],
    cited_documents: Sequence[str],
    settings: RetrievalSettings | None = None,
) -> int:
    """Cache `answer` for the principal's scope; `cited_documents` (`source:external_id`) invalidate it on change."""
    settings = settings or get_retrieval_settings()
    row = conn.execute(
        """
        INSERT INTO answer_cache (scope_key, knowledge_version, query, embedding, answer, cited_documents)
        VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (
            access.scope_key(principal, settings=settings),
            knowledge_version(conn),
            query,
            np.asarray(query_vector, dtype=np.float32),
            Jsonb(answer),
            sorted(set(cited_documents)),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def invalidate(*, conn: psycopg.Connection, document_ids: Sequence[str]) -> int:
    """Delete every entry citing one of `document_ids`; return how many went."""
    cur = conn.execute("DELETE FROM answer_cache WHERE cited_documents && %s::text[]", (list(document_ids),))
    return cur.rowcount
