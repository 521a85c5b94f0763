"""Selective filters still return k results, through the exact plan and through iterative HNSW scans."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from evals.bench import retrieval as bench
from streamdesk import db
from streamdesk.identity.models import Principal
from streamdesk.retrieval import service
from streamdesk.retrieval.config import RetrievalSettings
from streamdesk.retrieval.models import Filters

pytestmark = [pytest.mark.stack]
SIZE = 3000
PRINCIPAL = Principal.parse("user:carol?roles=agent&groups=fraud")


@pytest.fixture(scope="module")
def loaded(database_url: str, truncate: Callable[[str], None]) -> Iterator[tuple[str, bench.Corpus]]:
    """SIZE chunks of random unit vectors, 1% with source `rare` and 10% with source `tenth`."""
    truncate(database_url)
    rng = np.random.default_rng(5)
    base = rng.normal(size=(300, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    corpus = bench.replicate(
        base_vectors=base,
        base_texts=[(f"title {n}", f"body text number {n}") for n in range(300)],
        total=SIZE,
        noise=0.05,
    )
    with db.connect(database_url) as conn:
        bench.load(conn, corpus)
    yield database_url, corpus
    truncate(database_url)
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE INDEX IF NOT EXISTS ix_chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)"
        )


@pytest.mark.parametrize("source", ["rare", "tenth"])
@pytest.mark.parametrize("exact_max_rows", [0, 3000], ids=["index", "exact"])
def test_selective_filters_still_return_k_results(
    loaded: tuple[str, bench.Corpus], source: str, exact_max_rows: int
) -> None:
    url, corpus = loaded
    settings = RetrievalSettings(exact_max_rows=exact_max_rows)
    narrowing = Filters(sources=frozenset({source}))
    rng = np.random.default_rng(9)
    queries = corpus.vectors[rng.choice(SIZE, 8, replace=False)]
    with db.connect(url) as conn:
        figures = bench.recall_and_latency(
            conn,
            corpus,
            queries=["body"] * len(queries),
            query_vectors=queries,
            principal=PRINCIPAL,
            filters=narrowing,
            settings=settings,
        )
        result = service.search(
            conn=conn,
            query="body",
            principal=PRINCIPAL,
            filters=narrowing,
            k=10,
            mode="vector",
            settings=settings,
            query_vector=queries[0],
        )
    assert len(result.hits) == 10 and {h.citation.source for h in result.hits} == {source}
    assert result.plan == ("exact" if exact_max_rows else "index")
    assert figures["recall_at_10"] >= 0.9, figures
    if exact_max_rows:
        assert figures["recall_at_10"] == 1.0


def test_a_filter_matching_fewer_than_k_chunks_returns_all_of_them(loaded: tuple[str, bench.Corpus]) -> None:
    url, corpus = loaded
    narrowing = Filters(sources=frozenset({"rare"}), doc_types=frozenset({"kb_article"}))
    wanted = sum(
        1
        for s, level, groups in zip(corpus.sources, corpus.levels, corpus.groups, strict=True)
        if s == "rare" and (level != "restricted" or "fraud" in groups)
    )
    with db.connect(url) as conn:
        result = service.search(
            conn=conn,
            query="body",
            principal=PRINCIPAL,
            filters=narrowing,
            k=wanted + 5,
            mode="vector",
            settings=RetrievalSettings(exact_max_rows=0),
            query_vector=corpus.vectors[0],
        )
    assert len(result.hits) == wanted and result.plan == "exact"


def test_iterative_hnsw_scans_fill_k_under_a_one_percent_filter(loaded: tuple[str, bench.Corpus]) -> None:
    url, corpus = loaded
    settings = RetrievalSettings(exact_max_rows=0)
    narrowing = Filters(sources=frozenset({"rare"}))
    with db.connect(url) as conn:
        conn.execute("SET enable_sort = off")  # a table this small would be sorted exactly: force the HNSW path
        conn.commit()
        plan = conn.execute(
            "EXPLAIN SELECT external_id FROM chunks WHERE source = 'rare' ORDER BY embedding <=> %s LIMIT 10",
            (corpus.vectors[0],),
        ).fetchall()
        assert any("ix_chunks_embedding" in line[0] for line in plan)
        conn.commit()
        figures = bench.recall_and_latency(
            conn,
            corpus,
            queries=["body"] * 8,
            query_vectors=corpus.vectors[:8],
            principal=PRINCIPAL,
            filters=narrowing,
            settings=settings,
        )
    assert figures["plan"] == "index", "the iterative scan must fill k without falling back to the exact plan"
    assert figures["recall_at_10"] >= 0.9, figures
