"""`streamdesk bench ingest`: end-to-end ingest throughput and freshness versus the bare embedder.

Everything runs on a fresh embedded broker and database. Phases:
1. embed-only: the worker's chunker and embedder on the benchmark passages, in this process;
2. throughput: a warmed-up ingest worker (separate process) drains the same number of new passages
   published at once (Kafka -> Faust -> chunk -> embed -> pgvector);
3. freshness: passages published at half the measured capacity; each one's time from produce to
   its chunks being committed (visible to queries) is recorded.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.corpus import passages
from streamdesk import db, topics
from streamdesk.config import get_settings
from streamdesk.kafka import Publisher
from streamdesk.knowledge import embedders
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase, free_port

MAPPED = "raw.mapped"


def _article(pid: str, title: str, text: str) -> bytes:
    return json.dumps(
        {"id": pid, "title": title, "text": text, "access": "public", "updated_at": "2026-11-23T00:00:00Z"}
    ).encode()


def _embed_only(items: list[tuple[str, str, str]]) -> tuple[int, float]:
    from streamdesk.knowledge import chunking, embedding

    settings = get_settings().ingest
    embedder = embedders.get_embedder()
    embedder.embed(["warm up"] * 8)
    started = time.perf_counter()
    inputs = []
    for _, title, text in items:
        for chunk in chunking.chunk_text(
            text, tokenizer=embedder.tokenizer, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
        ):
            inputs.append(embedding.embedding_input(title, chunk.text))
    for start in range(0, len(inputs), settings.embed_batch):
        embedder.embed(inputs[start : start + settings.embed_batch])
    return len(inputs), time.perf_counter() - started


def _count_chunks(url: str, prefix: str) -> int:
    with db.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM chunks WHERE external_id LIKE %s", (prefix + "%",)).fetchone()
    return int(row[0]) if row else 0


def _wait(predicate: Any, *, timeout_s: float, what: str, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if worker.poll() is not None:
            raise RuntimeError(f"ingest worker exited with {worker.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def run(*, shared_data: Path, docs: int = 400, freshness_s: float = 30.0) -> dict[str, Any]:
    """Run all three phases; return the figures."""
    pool = passages(shared_data)
    throughput_items = list(itertools.islice(pool, docs))
    embed_items = list(itertools.islice(pool, docs))
    embed_chunks, embed_seconds = _embed_only(embed_items)
    embed_rate = embed_chunks / embed_seconds

    with tempfile.TemporaryDirectory(prefix="streamdesk-bench-") as tmp:
        database = EmbeddedDatabase(Path(tmp) / "pg").start()
        broker = EmbeddedBroker(free_port(), Path(tmp) / "tansu.log").start()
        worker: subprocess.Popen[bytes] | None = None
        try:
            db.migrate(database.url)
            topics.ensure_topics(broker.bootstrap_servers)
            env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, DATABASE_URL=database.url)
            env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
            log_path = Path(tmp) / "worker.log"
            worker = subprocess.Popen(
                [sys.executable, "-m", "streamdesk.cli.main", "worker", "ingest"],
                env=env,
                stdout=log_path.open("wb"),
                stderr=subprocess.STDOUT,
            )
            publisher = Publisher(broker.bootstrap_servers, client_id="bench")
            publisher.publish(
                MAPPED,
                _article("warm-0", "Warm up", "Warming the ingest worker up."),
                key="warm-0",
                headers={"mapping": "kb_article"},
            )
            publisher.flush()
            _wait(lambda: _count_chunks(database.url, "warm-") > 0, timeout_s=180, what="warm-up", worker=worker)

            want = _expected_chunks(throughput_items)
            started = time.perf_counter()
            for pid, title, text in throughput_items:
                publisher.publish(
                    MAPPED, _article(f"tp-{pid}", title, text), key=f"tp-{pid}", headers={"mapping": "kb_article"}
                )
            publisher.flush()
            _wait(
                lambda: _count_chunks(database.url, "tp-") >= want,
                timeout_s=900,
                what="throughput phase",
                worker=worker,
            )
            elapsed = time.perf_counter() - started
            chunks = _count_chunks(database.url, "tp-")
            chunks_per_s = chunks / elapsed

            fresh = _freshness(
                publisher,
                database.url,
                pool,
                rate_chunks_per_s=chunks_per_s / 2,
                duration_s=freshness_s,
                worker=worker,
            )
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
            broker.stop()
            database.stop()
    return {
        "events": len(throughput_items),
        "chunks": chunks,
        "seconds": round(elapsed, 2),
        "chunks_per_s": round(chunks_per_s, 2),
        "embed_only_chunks": embed_chunks,
        "embed_only_chunks_per_s": round(embed_rate, 2),
        "ratio": round(chunks_per_s / embed_rate, 3),
        **fresh,
    }


def _expected_chunks(items: list[tuple[str, str, str]]) -> int:
    from streamdesk.knowledge import chunking

    settings = get_settings().ingest
    tokenizer = embedders.get_embedder().tokenizer
    return sum(
        len(
            chunking.chunk_text(
                text, tokenizer=tokenizer, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
            )
        )
        for _, _, text in items
    )


def _freshness(
    publisher: Publisher,
    url: str,
    pool: Any,
    *,
    rate_chunks_per_s: float,
    duration_s: float,
    worker: subprocess.Popen[bytes],
) -> dict[str, Any]:
    items = list(itertools.islice(pool, max(1, int(rate_chunks_per_s * duration_s))))
    interval = 1.0 / rate_chunks_per_s
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    def produce() -> None:
        next_at = time.perf_counter()
        for pid, title, text in items:
            key = f"fr-{pid}"
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            publisher.publish(MAPPED, _article(key, title, text), key=key, headers={"mapping": "kb_article"})
            publisher.flush()
            sent[key] = time.perf_counter()
            next_at += interval

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    with db.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + duration_s + 120
        while (thread.is_alive() or len(seen) < len(items)) and time.monotonic() < deadline:
            rows = conn.execute("SELECT DISTINCT external_id FROM chunks WHERE external_id LIKE 'fr-%'").fetchall()
            now = time.perf_counter()
            for (key,) in rows:
                seen.setdefault(key, now)
            if worker.poll() is not None:
                break
            time.sleep(0.02)
    thread.join()
    lags = np.array([seen[k] - sent[k] for k in sent if k in seen])
    return {
        "freshness_events": int(lags.size),
        "freshness_rate_chunks_per_s": round(rate_chunks_per_s, 2),
        "freshness_p50_s": round(float(np.percentile(lags, 50)), 3) if lags.size else None,
        "freshness_p95_s": round(float(np.percentile(lags, 95)), 3) if lags.size else None,
        "freshness_lost": len(sent) - int(lags.size),
    }
