"""`streamdesk bench retrieval`: latency and recall of permission-aware hybrid search over a 100k-chunk store.

The embedder does ~45 chunks/s here, so the corpus is built, not embedded: a few thousand real passages
are embedded once, then replicated with small random perturbations (Gaussian noise on the unit vector,
re-normalised; a tenth of the words dropped from the text) up to the wanted size, and bulk-loaded with
binary COPY into a fresh embedded PostgreSQL, after which the HNSW indexes are built. Each chunk gets an
access level (70% public, 20% internal, 10% restricted to `fraud` or `billing`) and a source: `rare`
(1% of chunks), `tenth` (10%) or `kb`, so filters of known selectivity exist.

Measured: p50/p95 of the hybrid search under an employee's access filter (query vectors precomputed;
query embedding is reported apart), recall@10 of the vector arm against exact search under the same
filter, and the same recall with 1% and 10% source filters; then, for each vector mode (fp32, halfvec,
binary + re-rank), latency and recall@10 against exact fp32 search.
"""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from evals.bench.corpus import passages
from streamdesk import db
from streamdesk.identity.models import Principal
from streamdesk.knowledge import embedders
from streamdesk.retrieval import access, cutover, service, vectors
from streamdesk.retrieval.config import RetrievalSettings, VectorMode
from streamdesk.retrieval.models import Filters
from streamdesk.runtime.embedded import EmbeddedDatabase

EMPLOYEE = "user:bench?roles=agent&groups=fraud"
QUERY_FILES = ("retrieval/clapnq_dev/queries.jsonl", "retrieval/tau2_banking_knowledge/queries.jsonl")
CORPUS_FILES = ("retrieval/clapnq_dev/corpus.jsonl", "retrieval/tau2_banking_knowledge/corpus.jsonl")
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Corpus:
    """Chunk vectors with their text and metadata, ready to load."""

    vectors: np.ndarray
    titles: list[str]
    texts: list[str]
    sources: list[str]
    levels: list[str]
    groups: list[list[str]]

    def __len__(self) -> int:
        return len(self.texts)


def replicate(
    *,
    base_vectors: np.ndarray,
    base_texts: Sequence[tuple[str, str]],
    total: int,
    noise: float = 0.03,
    seed: int = 11,
) -> Corpus:
    """`total` chunks: perturbed copies of the base passages, with access levels and sources assigned at random."""
    rng = np.random.default_rng(seed)
    words_rng = random.Random(seed)
    picks = np.arange(total) % len(base_vectors)
    vectors_out = base_vectors[picks] + rng.normal(0.0, noise, size=(total, base_vectors.shape[1])).astype(np.float32)
    vectors_out /= np.linalg.norm(vectors_out, axis=1, keepdims=True)
    titles, texts = [], []
    for n, pick in enumerate(picks):
        title, text = base_texts[int(pick)]
        words = text.split()
        if n >= len(base_texts):
            words = [w for w in words if words_rng.random() > 0.1]
        titles.append(title)
        texts.append(" ".join(words))
    return Corpus(vectors_out.astype(np.float32), titles, texts, *assign_metadata(total, seed=seed))


def assign_metadata(total: int, *, seed: int) -> tuple[list[str], list[str], list[list[str]]]:
    """Sources (`rare` 1%, `tenth` 10%, else `kb`) and access (70% public, 20% internal, 10% restricted)."""
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(total)
    sources = ["kb"] * total
    for position, index in enumerate(order):
        if position < total // 100:
            sources[index] = "rare"
        elif position < total // 100 + total // 10:
            sources[index] = "tenth"
    draw = rng.random(total)
    levels = ["public" if d < 0.7 else "internal" if d < 0.9 else "restricted" for d in draw]
    groups = [[("fraud", "billing")[n % 2]] if level == "restricted" else [] for n, level in enumerate(levels)]
    return sources, levels, groups


DOCUMENT_COLUMNS = (
    ("source", "text"),
    ("external_id", "text"),
    ("version", "int8[]"),
    ("event_id", "text"),
    ("title", "text"),
    ("doc_type", "text"),
    ("tenant", "text"),
    ("access_level", "text"),
    ("access_groups", "text[]"),
    ("content_hash", "text"),
    ("chunk_count", "int4"),
    ("occurred_at", "timestamptz"),
)
CHUNK_COLUMNS = (
    ("source", "text"),
    ("external_id", "text"),
    ("chunk_no", "int4"),
    ("title", "text"),
    ("text", "text"),
    ("char_start", "int4"),
    ("char_end", "int4"),
    ("token_count", "int4"),
    ("content_hash", "text"),
    ("embedding", "vector"),
    ("embedding_model", "text"),
    ("embedding_version", "text"),
    ("doc_type", "text"),
    ("tenant", "text"),
    ("access_level", "text"),
    ("access_groups", "text[]"),
    ("occurred_at", "timestamptz"),
)


def copy_rows(
    cur: psycopg.Cursor[Any], table: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> None:
    """Binary COPY of `rows` into `table`; `columns` pairs each column with its PostgreSQL type."""
    names = ", ".join(name for name, _ in columns)
    with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


def load(conn: psycopg.Connection, corpus: Corpus, *, prefix: str = "bench") -> None:
    """Bulk-load `corpus` (one document per chunk) with binary COPY, without index maintenance, then index it."""
    conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding")
    space = cutover.active_space(conn)
    stamp = [EPOCH + timedelta(minutes=n) for n in range(len(corpus))]
    documents = (
        (
            corpus.sources[n],
            f"{prefix}-{n}",
            [1],
            f"ev-{n}",
            corpus.titles[n],
            "kb_article",
            "default",
            corpus.levels[n],
            corpus.groups[n],
            f"h{n}",
            1,
            stamp[n],
        )
        for n in range(len(corpus))
    )
    chunks = (
        (
            corpus.sources[n],
            f"{prefix}-{n}",
            0,
            corpus.titles[n],
            text,
            0,
            len(text),
            len(text.split()),
            f"c{n}",
            corpus.vectors[n],
            space.model,
            space.version,
            "kb_article",
            "default",
            corpus.levels[n],
            corpus.groups[n],
            stamp[n],
        )
        for n, text in enumerate(corpus.texts)
    )
    with conn.cursor() as cur:
        copy_rows(cur, "documents", DOCUMENT_COLUMNS, documents)
        copy_rows(cur, "chunks", CHUNK_COLUMNS, chunks)
    conn.commit()
    conn.autocommit = True
    try:
        vectors.create_index(conn, mode="vector")
        conn.execute("ANALYZE chunks")
        conn.execute("ANALYZE documents")
    finally:
        conn.autocommit = False


def exact_top(corpus: Corpus, query: np.ndarray, mask: np.ndarray, k: int = 10) -> list[int]:
    """Indexes of the k nearest chunks (cosine) among those where `mask` holds."""
    scores = corpus.vectors @ query
    scores = np.where(mask, scores, -np.inf)
    top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
    top = top[np.argsort(-scores[top])]
    return [int(i) for i in top if np.isfinite(scores[i])]


def row_mask(corpus: Corpus, predicate: access.Predicate) -> np.ndarray:
    """Which chunks the predicate allows (evaluated in Python, the test oracle of the SQL filter)."""
    return np.array(
        [
            predicate.allows(
                {
                    "tenant": "default",
                    "access_level": corpus.levels[n],
                    "access_groups": corpus.groups[n],
                    "source": corpus.sources[n],
                    "doc_type": "kb_article",
                    "occurred_at": None,
                }
            )
            for n in range(len(corpus))
        ]
    )


def recall_and_latency(
    conn: psycopg.Connection,
    corpus: Corpus,
    *,
    queries: Sequence[str],
    query_vectors: np.ndarray,
    principal: Principal,
    filters: Filters,
    settings: RetrievalSettings,
    mode: str = "vector",
    k: int = 10,
) -> dict[str, Any]:
    """Mean recall@k of `mode` against exact search under the same filter, and latency percentiles."""
    mask = row_mask(corpus, access.search_predicate(principal, filters, settings=settings))
    recalls, latencies, plans = [], [], []
    for text, vector in zip(queries, query_vectors, strict=True):
        started = time.perf_counter()
        result = service.search(
            conn=conn,
            query=text,
            principal=principal,
            filters=filters,
            k=k,
            mode=mode,  # type: ignore[arg-type]
            settings=settings,
            query_vector=vector,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        plans.append(result.plan)
        truth = {f"bench-{i}" for i in exact_top(corpus, vector, mask, k)}
        found = {h.citation.external_id for h in result.hits}
        if truth:
            recalls.append(len(truth & found) / len(truth))
    return {
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "plan": max(set(plans), key=plans.count),
        "matching_chunks": int(mask.sum()),
    }


def bench_queries(shared_data: Path, *, count: int) -> list[str]:
    """Real questions whose answers are in the corpus: ClapNQ's answerable ones first."""
    texts: list[str] = []
    for name in QUERY_FILES:
        path = shared_data / name
        if path.is_file():
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            texts += [r["text"] for r in records if r.get("answerable", True) and len(r["text"].split()) <= 30]
    return texts[:count]


def base_passages(shared_data: Path, *, count: int, words: int = 150) -> list[tuple[str, str]]:
    """(title, text) passages of about `words` words: every ClapNQ passage first (its questions are the
    benchmark's queries), then τ²-bench banking ones."""
    found = passages(shared_data, words=words, datasets=CORPUS_FILES, whole_short_docs=True)
    return [(title, text) for _, title, text in itertools.islice(found, count)]


def run(
    *,
    shared_data: Path,
    chunks: int = 100_000,
    base: int = 2000,
    queries: int = 200,
    modes: Sequence[VectorMode] = ("vector", "halfvec", "binary"),
    shared_buffers: str = "1GB",
) -> dict[str, Any]:
    """Build the corpus, load it into a fresh database, and measure; return the figures."""
    from streamdesk.knowledge import embedding

    embedder = embedders.get_embedder()
    base_items = base_passages(shared_data, count=base)
    started = time.perf_counter()
    base_vectors = embedder.embed([embedding.embedding_input(t, x) for t, x in base_items])
    embed_s = time.perf_counter() - started
    corpus = replicate(base_vectors=base_vectors, base_texts=base_items, total=chunks)
    texts = bench_queries(shared_data, count=queries)
    query_vectors = embedder.embed(texts)
    single = []
    for text in texts[:50]:
        mark = time.perf_counter()
        embedder.embed([text])
        single.append((time.perf_counter() - mark) * 1000)
    principal = Principal.parse(EMPLOYEE)
    out: dict[str, Any] = {"chunks": chunks, "base_passages": len(base_items), "queries": len(texts)}
    with tempfile.TemporaryDirectory(prefix="streamdesk-bench-retrieval-") as tmp:
        database = EmbeddedDatabase(Path(tmp) / "pg").start()
        try:
            db.migrate(database.url, revision="heads")
            database = _with_memory(database, shared_buffers=shared_buffers)
            out["shared_buffers"] = shared_buffers
            with db.connect(database.url) as conn:
                mark = time.perf_counter()
                load(conn, corpus)
                out["load_and_index_s"] = round(time.perf_counter() - mark, 1)
                settings = RetrievalSettings()
                measure = _measurer(conn, corpus, texts, query_vectors, principal)
                for _ in range(2):
                    measure(Filters(), settings, "hybrid")
                hybrid = measure(Filters(), settings, "hybrid")
                plain = measure(Filters(), settings, "vector")
                rare = measure(Filters(sources=frozenset({"rare"})), settings, "vector")
                rare_index = measure(
                    Filters(sources=frozenset({"rare"})), RetrievalSettings(exact_max_rows=0), "vector"
                )
                tenth = measure(Filters(sources=frozenset({"tenth"})), settings, "vector")
                tenth_hybrid = measure(Filters(sources=frozenset({"tenth"})), settings, "hybrid")
                sweep = {
                    ef: measure(Filters(), RetrievalSettings(ef_search=ef), "vector") for ef in (40, 100, 200, 400)
                }
                out.update(
                    p50_ms=hybrid["p50_ms"],
                    p95_ms=hybrid["p95_ms"],
                    recall_at_10=plain["recall_at_10"],
                    filtered_recall_at_10_1pct=rare["recall_at_10"],
                    filtered_recall_at_10_10pct=tenth["recall_at_10"],
                    details={
                        "hybrid": hybrid,
                        "vector": plain,
                        "filter_1pct": rare,
                        "filter_1pct_forced_index": rare_index,
                        "filter_10pct": tenth,
                        "filter_10pct_hybrid": tenth_hybrid,
                        "vector_ef_search_sweep": {
                            ef: {"recall_at_10": f["recall_at_10"], "p50_ms": f["p50_ms"], "p95_ms": f["p95_ms"]}
                            for ef, f in sweep.items()
                        },
                        "query_embed_p50_ms": round(float(np.percentile(single, 50)), 2),
                        "base_embed_chunks_per_s": round(len(base_items) / embed_s, 1),
                    },
                )
                out["vector_modes"] = _vector_modes(conn, measure, modes=modes)
        finally:
            database.stop()
    return out


def _with_memory(database: EmbeddedDatabase, *, shared_buffers: str) -> EmbeddedDatabase:
    """Restart the database with `shared_buffers` large enough to hold the table and its indexes (~600 MB).

    PostgreSQL's default (128 MB) makes every search read pages back from the OS cache; a production
    server sized for its working set keeps them in shared memory, as measured here.
    """
    with db.connect(database.url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
    database.stop()
    return EmbeddedDatabase(database.data_dir).start()


def _measurer(
    conn: psycopg.Connection, corpus: Corpus, texts: list[str], query_vectors: np.ndarray, principal: Principal
) -> Any:
    def measure(filters: Filters, settings: RetrievalSettings, mode: str) -> dict[str, Any]:
        return recall_and_latency(
            conn,
            corpus,
            queries=texts,
            query_vectors=query_vectors,
            principal=principal,
            filters=filters,
            settings=settings,
            mode=mode,
        )

    return measure


def _vector_modes(conn: psycopg.Connection, measure: Any, *, modes: Sequence[VectorMode]) -> dict[str, Any]:
    """Latency and recall@10 (against exact fp32) of the vector arm through each mode's index."""
    results: dict[str, Any] = {}
    conn.autocommit = True
    try:
        for mode in modes:
            mark = time.perf_counter()
            vectors.create_index(conn, mode=mode)
            size = conn.execute("SELECT pg_relation_size(%s::regclass)", (vectors.index_name(mode),)).fetchone()
            build_s = time.perf_counter() - mark
            conn.autocommit = False
            settings = RetrievalSettings(vector_mode=mode)
            measure(Filters(), settings, "vector")
            figures = measure(Filters(), settings, "vector")
            conn.autocommit = True
            results[mode] = {
                "recall_at_10": figures["recall_at_10"],
                "p50_ms": figures["p50_ms"],
                "p95_ms": figures["p95_ms"],
                "index_mb": round((size[0] if size else 0) / 2**20, 1),
                "build_s": round(build_s, 1) if mode != "vector" else None,
            }
    finally:
        conn.autocommit = False
    return results


EMBEDDER_VARIANTS = (
    ("torch", "torch", 64),
    ("onnx", "onnx", 1),
    ("onnx-int8", "onnx-int8", 1),
    ("onnx-int8-batch32", "onnx-int8", 32),
)
"""(label, backend, batch size) compared by `compare_embedders`; the first is the reference."""


def compare_embedders(
    *,
    shared_data: Path,
    variants: Sequence[tuple[str, str, int]] = EMBEDDER_VARIANTS,
    passages_n: int = 192,
    rounds: int = 3,
) -> dict[str, Any]:
    """Throughput on ~150-word chunks and top-10 agreement with the reference on ClapNQ (corpus and queries
    both re-embedded by each variant). Timing rounds are interleaved and the best round kept: the cores
    are shared, so a round can be slowed by others' work, never sped up."""
    from streamdesk.knowledge import embedding

    dataset = shared_data / "retrieval" / "clapnq_dev"
    corpus = [json.loads(line) for line in (dataset / "corpus.jsonl").read_text().splitlines() if line.strip()]
    doc_texts = [embedding.embedding_input(d.get("title") or "", d["text"]) for d in corpus]
    query_texts = [json.loads(line)["text"] for line in (dataset / "queries.jsonl").read_text().splitlines() if line]
    speed_texts = [embedding.embedding_input(t, x) for _, t, x in itertools.islice(passages(shared_data), passages_n)]
    embedders = {
        label: embedders.load_embedder(
            backend=backend,  # type: ignore[arg-type]
            path=None,
            model_name="all-MiniLM-L6-v2",
            version="bench",
            batch_size=batch,
        )
        for label, backend, batch in variants
    }
    best = dict.fromkeys(embedders, 0.0)
    for embedder in embedders.values():
        embedder.embed(speed_texts[:32])
    for _ in range(rounds):
        for label, embedder in embedders.items():
            mark = time.perf_counter()
            embedder.embed(speed_texts)
            best[label] = max(best[label], len(speed_texts) / (time.perf_counter() - mark))
    reference = variants[0][0]
    ref_docs, ref_queries = embedders[reference].embed(doc_texts), embedders[reference].embed(query_texts)
    ref_top = np.argsort(-(ref_queries @ ref_docs.T), axis=1)[:, :10]
    out: dict[str, Any] = {"reference": reference, "chunks_timed": len(speed_texts), "queries": len(query_texts)}
    for (label, backend, batch), embedder in zip(variants, embedders.values(), strict=True):
        docs, queries_v = embedder.embed(doc_texts), embedder.embed(query_texts)
        top = np.argsort(-(queries_v @ docs.T), axis=1)[:, :10]
        agreement = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top, strict=True)])
        out[label] = {
            "backend": backend,
            "batch": batch,
            "chunks_per_s": round(best[label], 1),
            "speedup": round(best[label] / best[reference], 2),
            "agreement_at_10": round(float(agreement), 4),
            "mean_cosine_to_reference": round(float((docs * ref_docs).sum(1).mean()), 4),
        }
    return out
