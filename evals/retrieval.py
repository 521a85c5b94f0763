"""BEIR-style retrieval evaluation: ingest a corpus through the real ingest path, then score each search mode.

`evaluate_dataset` starts a fresh embedded broker and database, runs the real ingest worker process,
publishes the corpus as `kb_article` messages to `raw.mapped`, waits until every document is stored and
the worker's lag is zero, and then scores lexical, vector and hybrid search at the document level (the
first chunk of a document stands for it) with recall@5/10, MRR@10 and nDCG@10.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from evals.exceptions import DatasetError
from streamdesk import db, topics
from streamdesk.identity.models import Principal
from streamdesk.kafka import Publisher
from streamdesk.retrieval import cutover, service
from streamdesk.retrieval.config import RetrievalSettings, SearchMode
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase, free_port

log = logging.getLogger(__name__)

MODES: tuple[SearchMode, ...] = ("lexical", "vector", "hybrid")
EVAL_PRINCIPAL = "user:evaluator?roles=admin"
KB_SOURCE = "kb"
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Dataset:
    """A BEIR-layout folder: the corpus file, the queries by id, and graded relevance per query."""

    corpus: Path
    queries: dict[str, str]
    qrels: Qrels


def load_dataset(folder: Path) -> Dataset:
    """Read `corpus.jsonl`, `queries.jsonl` and `qrels.tsv` (or `qrels/test.tsv`) from `folder`."""
    corpus = folder / "corpus.jsonl"
    qrels_path = next((p for p in (folder / "qrels.tsv", folder / "qrels" / "test.tsv") if p.is_file()), None)
    for needed in (corpus, folder / "queries.jsonl"):
        if not needed.is_file():
            raise DatasetError(f"{needed} not found; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels.tsv")
    if qrels_path is None:
        raise DatasetError(f"no qrels.tsv (or qrels/test.tsv) in {folder}; add the relevance judgements")
    queries: dict[str, str] = {}
    for number, line in enumerate((folder / "queries.jsonl").read_text().splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = str(record["text"])
            except (json.JSONDecodeError, KeyError) as exc:
                raise DatasetError(f"queries.jsonl:{number} needs `_id` and `text`: {exc}") from exc
    qrels: Qrels = {}
    for number, line in enumerate(qrels_path.read_text().splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) < 3 or parts[0] in ("query-id", "query_id"):
            continue
        try:
            score = int(float(parts[2]))
        except ValueError as exc:
            raise DatasetError(f"{qrels_path.name}:{number} has a non-numeric score {parts[2]!r}") from exc
        if score > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = score
    return Dataset(corpus=corpus, queries=queries, qrels={q: r for q, r in qrels.items() if q in queries})


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document in the top k (0 when none)."""
    return next((1.0 / rank for rank, doc in enumerate(ranked[:k], start=1) if doc in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain with graded relevance (linear gains, as BEIR/trec_eval)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def score_rankings(rankings: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """Mean recall@5, recall@10, MRR@10 and nDCG@10 over the queries of `qrels`."""
    totals = {"recall_at_5": 0.0, "recall_at_10": 0.0, "mrr_at_10": 0.0, "ndcg_at_10": 0.0}
    for query_id, relevant in qrels.items():
        ranked = rankings.get(query_id, [])
        totals["recall_at_5"] += recall_at(ranked, relevant, 5)
        totals["recall_at_10"] += recall_at(ranked, relevant, 10)
        totals["mrr_at_10"] += mrr_at(ranked, relevant, 10)
        totals["ndcg_at_10"] += ndcg_at(ranked, relevant, 10)
    count = max(len(qrels), 1)
    return {name: round(value / count, 4) for name, value in totals.items()}


def document_ranking(result_ids: Sequence[str], *, k: int) -> list[str]:
    """Distinct document ids in first-seen order, at most k."""
    return list(dict.fromkeys(result_ids))[:k]


def score_modes(
    conn: psycopg.Connection,
    *,
    dataset: Dataset,
    principal: Principal,
    settings: RetrievalSettings | None = None,
    chunks_per_query: int = 50,
) -> dict[str, dict[str, float]]:
    """Run every query of `dataset` in each mode against the stored corpus; return the metrics per mode."""
    query_ids = sorted(dataset.qrels)
    with conn.transaction():
        embedder = cutover.active_space(conn).embedder()
    query_vectors = embedder.embed([dataset.queries[q] for q in query_ids])
    results: dict[str, dict[str, float]] = {}
    for mode in MODES:
        rankings: dict[str, list[str]] = {}
        for query_id, vector in zip(query_ids, query_vectors, strict=True):
            found = service.search(
                conn=conn,
                query=dataset.queries[query_id],
                principal=principal,
                k=chunks_per_query,
                mode=mode,
                settings=settings,
                query_vector=vector,
            )
            ids = [h.citation.external_id for h in found.hits if h.citation.source == KB_SOURCE]
            rankings[query_id] = document_ranking(ids, k=10)
        results[mode] = score_rankings(rankings, dataset.qrels)
    return results


@dataclass
class IngestStack:
    """A fresh embedded broker and database with the real ingest worker running against them."""

    bootstrap_servers: str
    database_url: str
    worker: subprocess.Popen[bytes]
    log_path: Path

    def wait_for_documents(self, count: int, *, timeout_s: float) -> float:
        """Block until `count` documents are stored and the worker's lag is zero; return the seconds waited."""
        from streamdesk.ingest import status as ingest_status

        started = time.monotonic()
        while True:
            with db.connect(self.database_url) as conn:
                stored = ingest_status.store_counts(conn)["documents"]
            if stored >= count and not sum(ingest_status.ingest_lag(self.bootstrap_servers).values()):
                return time.monotonic() - started
            if self.worker.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise DatasetError(f"ingest worker exited with {self.worker.returncode}; log tail:\n{tail}")
            if time.monotonic() - started > timeout_s:
                raise DatasetError(
                    f"only {stored} of {count} documents ingested after {timeout_s}s; see {self.log_path}"
                )
            time.sleep(1.0)


@contextmanager
def ingest_stack(workdir: Path) -> Iterator[IngestStack]:
    """Start an embedded database and broker in `workdir`, migrate, create topics, run an ingest worker."""
    database = EmbeddedDatabase(workdir / "pg").start()
    broker: EmbeddedBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        broker = EmbeddedBroker(free_port(), workdir / "tansu.log").start()
        db.migrate(database.url, revision="heads")
        topics.ensure_topics(broker.bootstrap_servers)
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, DATABASE_URL=database.url)
        env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        log_path = workdir / "worker.log"
        with log_path.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streamdesk.cli.main", "worker", "ingest"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        yield IngestStack(broker.bootstrap_servers, database.url, worker, log_path)
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
        if broker is not None:
            broker.stop()
        database.stop()


def publish_corpus(bootstrap_servers: str, *, corpus: Path, limit: int | None = None) -> int:
    """Publish the corpus as `kb_article` messages (public access) to `raw.mapped`; return how many."""
    from streamdesk.seed import knowledge
    from streamdesk.seed.wire import KB_ARTICLE_MAPPING, MAPPED_TOPIC

    count = 0
    with Publisher(bootstrap_servers, client_id="eval") as publisher:
        for article in knowledge.beir_articles(corpus_dir=corpus, limit=limit):
            publisher.publish(
                MAPPED_TOPIC,
                json.dumps(article).encode(),
                key=article["id"],
                headers={"mapping": KB_ARTICLE_MAPPING},
            )
            count += 1
    return count


def evaluate_dataset(
    folder: Path,
    *,
    principal: Principal | None = None,
    settings: RetrievalSettings | None = None,
    timeout_s: float = 1800,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Ingest `folder`'s corpus through the real ingest path on a fresh stack and score every mode."""
    dataset = load_dataset(folder)
    principal = principal or Principal.parse(EVAL_PRINCIPAL)
    with tempfile.TemporaryDirectory(prefix="streamdesk-eval-") as tmp, ingest_stack(workdir or Path(tmp)) as stack:
        published = publish_corpus(stack.bootstrap_servers, corpus=dataset.corpus)
        log.info("published %d articles; waiting for the ingest worker", published)
        waited = stack.wait_for_documents(published, timeout_s=timeout_s)
        with db.connect(stack.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM chunks").fetchone()
            scores = score_modes(conn, dataset=dataset, principal=principal, settings=settings)
    return {
        **scores,
        "dataset": folder.name,
        "documents": published,
        "chunks": int(row[0]) if row else 0,
        "queries": len(dataset.qrels),
        "ingest_s": round(waited, 1),
    }
