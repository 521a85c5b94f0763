"""Permission-aware hybrid search: lexical (full text, title above body) and vector (HNSW) arms, fused.

Fusion (see `fusion`) combines z-scored cosine similarity and text rank over the union of both arms'
candidates (both scores are computed for every candidate), or uses reciprocal rank fusion.

Every SQL statement a search runs carries the principal's scope predicate (see `access`), so no row
outside it is ever read into a result. The vector arm uses the HNSW index with pgvector's iterative
scans, so filtered searches keep scanning until k rows pass the filter; when the planner expects the
filter to be selective (at most `exact_max_rows` rows), or the index scan still comes back short,
the arm runs an exact scan of the matching rows instead, which always returns min(k, matching rows).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg

from streamdesk.identity.models import PrincipalBase
from streamdesk.retrieval import access, cutover, fusion, lexical, vectors
from streamdesk.retrieval.config import RetrievalSettings, SearchMode, get_retrieval_settings
from streamdesk.retrieval.fusion import ChunkKey
from streamdesk.retrieval.models import Citation, Filters, Hit, SearchResult

_DETAILS = """
    SELECT source, external_id, chunk_no, title, url, text, char_start, char_end, doc_type, access_level,
           occurred_at
    FROM chunks c
    WHERE (source, external_id, chunk_no) IN (SELECT * FROM unnest(%(ks)s::text[], %(ke)s::text[], %(kc)s::int[]))
      AND {where}
"""
_LEXICAL = """
    WITH matched AS MATERIALIZED (
        SELECT source, external_id, chunk_no, tsv FROM chunks c
        WHERE tsv @@ %(match)s::tsquery AND {where} LIMIT %(cap)s),
    top AS (
        SELECT source, external_id, chunk_no, ts_rank(tsv, %(rank)s::tsquery, 1) AS score FROM matched
        ORDER BY score DESC, source, external_id, chunk_no LIMIT %(n)s)
    SELECT t.source, t.external_id, t.chunk_no, t.score{extra}
    FROM top t JOIN chunks c USING (source, external_id, chunk_no)
    ORDER BY t.score DESC, t.source, t.external_id, t.chunk_no
"""


def search(
    *,
    conn: psycopg.Connection,
    query: str,
    principal: PrincipalBase,
    filters: Filters | None = None,
    k: int = 10,
    mode: SearchMode = "hybrid",
    settings: RetrievalSettings | None = None,
    query_vector: np.ndarray | None = None,
) -> SearchResult:
    """The top-k chunks the principal may read for `query`, with citations and the access filter applied."""
    settings = settings or get_retrieval_settings()
    filters = filters or Filters()
    predicate = access.search_predicate(principal, filters, settings=settings)
    where, where_params = access.named_sql(predicate, alias="c")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    plan = "none"
    space_name: str | None = None
    rankings: dict[str, list[ChunkKey]] = {}
    terms = lexical.LexicalQuery("", "", 0, 0)
    scores: dict[ChunkKey, tuple[float | None, float | None]] = {}
    with conn.transaction():
        if predicate != access.Const(False):
            n = max(k, settings.candidates) if mode == "hybrid" else k
            if mode in ("hybrid", "lexical"):
                mark = time.perf_counter()
                terms = lexical.build(conn, query=query, budget=settings.lexical_match_budget)
                timings["terms_ms"] = _ms(mark)
            if mode in ("hybrid", "vector"):
                _prepare_vector_search(conn, settings=settings)
                space = cutover.active_space(conn)
                space_name = space.name
                if query_vector is None:
                    mark = time.perf_counter()
                    query_vector = space.embedder().embed([query])[0]
                    timings["embed_ms"] = _ms(mark)
                mark = time.perf_counter()
                hits, plan = _vector_arm(
                    conn,
                    vector=query_vector,
                    rank=terms.rank if mode == "hybrid" else "",
                    where=where,
                    params=where_params,
                    n=n,
                    dimension=space.dimension,
                    settings=settings,
                )
                rankings["vector"] = [key for key, _ in hits]
                scores.update(hits)
                timings["vector_ms"] = _ms(mark)
            if mode in ("hybrid", "lexical") and terms.match:
                mark = time.perf_counter()
                hits = _lexical_arm(
                    conn,
                    terms=terms,
                    vector=query_vector if mode == "hybrid" else None,
                    where=where,
                    params=where_params,
                    n=n,
                    cap=settings.lexical_rank_cap,
                )
                rankings["lexical"] = [key for key, _ in hits]
                for key, value in hits:
                    scores.setdefault(key, value)
                timings["lexical_ms"] = _ms(mark)
        if mode == "hybrid" and settings.fusion != "rrf":
            fused = fusion.convex_combination(
                rankings,
                similarity={key: 1.0 - value[0] for key, value in scores.items() if value[0] is not None},
                text_rank={key: value[1] or 0.0 for key, value in scores.items()},
                alpha=settings.fusion_alpha,
                normalisation=settings.fusion,
            )[:k]
        else:
            fused = fusion.reciprocal_rank_fusion(
                rankings,
                weights={"vector": settings.vector_weight, "lexical": settings.lexical_weight},
                k=settings.rrf_k,
            )[:k]
        mark = time.perf_counter()
        details = _details(conn, keys=[f.key for f in fused], where=where, params=where_params)
        timings["details_ms"] = _ms(mark)
    hits_out = [
        _hit(details[f.key], score=f.score, ranks=f.ranks, distance=scores.get(f.key, (None, None))[0])
        for f in fused
        if f.key in details
    ]
    timings["total_ms"] = _ms(started)
    return SearchResult(
        query=query,
        principal=principal.describe(),
        mode=mode,
        vector_mode=settings.vector_mode,
        plan=plan,
        applied_filter=predicate.describe(),
        embedding_space=space_name,
        hits=hits_out,
        timings_ms=timings,
    )


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


def _prepare_vector_search(conn: psycopg.Connection, *, settings: RetrievalSettings) -> None:
    """Hold the embedding-space lock (shared) and set the HNSW scan parameters for this transaction."""
    conn.execute(
        """
        SELECT pg_advisory_xact_lock_shared(%s, %s), set_config('hnsw.ef_search', %s, true),
               set_config('hnsw.iterative_scan', %s, true), set_config('hnsw.max_scan_tuples', %s, true)
        """,
        (*cutover.SPACE_LOCK, str(settings.ef_search), settings.iterative_scan, str(settings.max_scan_tuples)),
    )


def estimated_rows(conn: psycopg.Connection, *, where: str, params: dict[str, Any]) -> float:
    """The planner's estimate of how many chunks match `where` (no rows are read).

    Only the plan choice rests on it, never the result: a wrong estimate costs time, not hits, since
    an index scan that comes back short is redone exactly.
    """
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM chunks c WHERE {where}", params).fetchone()
    return _plan_rows(plan[0] if plan else None)


def _plan_rows(plan: Any) -> float:
    data = json.loads(plan) if isinstance(plan, str) else plan
    return float(data[0]["Plan"]["Plan Rows"]) if data else 0.0


def _vector_arm(
    conn: psycopg.Connection,
    *,
    vector: np.ndarray,
    rank: str,
    where: str,
    params: dict[str, Any],
    n: int,
    dimension: int,
    settings: RetrievalSettings,
) -> tuple[list[tuple[ChunkKey, tuple[float | None, float | None]]], str]:
    """(key, (distance, text rank or None)) nearest first, and the plan: `index` (HNSW, iterative) or `exact`."""
    values = {**params, "q": np.asarray(vector, dtype=np.float32), "n": n, "rank": rank}
    extra = ", ts_rank(c.tsv, %(rank)s::tsquery, 1)" if rank else ""
    exact = estimated_rows(conn, where=where, params=params) <= settings.exact_max_rows
    if not exact:
        if settings.vector_mode != "vector":
            vectors.require_index(conn, mode=settings.vector_mode)
        values["n_candidates"] = n * settings.binary_oversample
        sql = vectors.ann_sql(settings.vector_mode, where=where, dimension=dimension, extra=extra)
        rows = conn.execute(sql, values).fetchall()
        if len(rows) >= n:
            return [((r[0], r[1], r[2]), (float(r[3]), _float(r, 4))) for r in rows], "index"
    rows = conn.execute(vectors.exact_sql(where=where, extra=extra), values).fetchall()
    return [((r[0], r[1], r[2]), (float(r[3]), _float(r, 4))) for r in rows], "exact"


def _float(row: Sequence[Any], index: int) -> float | None:
    return float(row[index]) if len(row) > index and row[index] is not None else None


def _lexical_arm(
    conn: psycopg.Connection,
    *,
    terms: lexical.LexicalQuery,
    vector: np.ndarray | None,
    where: str,
    params: dict[str, Any],
    n: int,
    cap: int,
) -> list[tuple[ChunkKey, tuple[float | None, float | None]]]:
    """(key, (distance or None, text rank)) best first, ranking at most `cap` matching chunks."""
    values = {**params, "match": terms.match, "rank": terms.rank, "n": n, "cap": cap}
    extra = ""
    if vector is not None:
        values["q"] = np.asarray(vector, dtype=np.float32)
        extra = ", c.embedding <=> %(q)s"
    rows = conn.execute(_LEXICAL.format(where=where, extra=extra), values).fetchall()
    return [((r[0], r[1], r[2]), (_float(r, 4), float(r[3]))) for r in rows]


def _details(
    conn: psycopg.Connection, *, keys: Sequence[ChunkKey], where: str, params: dict[str, Any]
) -> dict[ChunkKey, tuple[Any, ...]]:
    if not keys:
        return {}
    values = {**params, "ks": [k[0] for k in keys], "ke": [k[1] for k in keys], "kc": [k[2] for k in keys]}
    rows = conn.execute(_DETAILS.format(where=where), values).fetchall()
    return {(r[0], r[1], r[2]): r for r in rows}


def _hit(row: tuple[Any, ...], *, score: float, ranks: dict[str, int], distance: float | None) -> Hit:
    source, external_id, chunk_no, title, url, text, char_start, char_end, doc_type, level, occurred_at = row
    return Hit(
        citation=Citation(
            document_id=f"{source}:{external_id}",
            source=source,
            external_id=external_id,
            title=title,
            url=url,
            chunk_no=chunk_no,
            char_start=char_start,
            char_end=char_end,
        ),
        text=text,
        score=round(score, 6),
        vector_rank=ranks.get("vector"),
        lexical_rank=ranks.get("lexical"),
        distance=round(distance, 6) if distance is not None else None,
        doc_type=doc_type,
        access_level=level,
        occurred_at=occurred_at,
    )
