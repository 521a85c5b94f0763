"""`streamdesk bench cdc`: a CDC change stream through streamdesk and through a LangChain PGVector pipeline.

Both sides get the same stream and the same embedder (the process's MiniLM, wrapped as a LangChain
`Embeddings` for the peer). A base of documents is loaded first (not timed, it warms both sides up); then
`events` changes are replayed: 70 % metadata-only updates (url, tags), 10 % deletes, 10 % creates and
10 % text updates. streamdesk gets them as `kb_article` messages on its real broker, stored by the real
ingest worker in a separate process; the peer applies each change as a new user would write it with
langchain-postgres: delete the document's row and add it again (which embeds its text). Both final states
are checked against the stream: the same live documents, with the same text and url, and nothing deleted
left behind. Needs the `bench` extra (`pip install streamdesk[bench]`).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import psycopg

from evals.bench.corpus import passages
from evals.exceptions import EvalError
from evals.retrieval import IngestStack, ingest_stack
from streamdesk import db
from streamdesk.kafka import Publisher
from streamdesk.knowledge import embedders
from streamdesk.seed.wire import KB_ARTICLE_MAPPING, MAPPED_TOPIC

SOURCE = "kb"
COLLECTION = "cdc_bench"
START_MS = 1_790_000_000_000
"""Version (epoch ms) of the first change; every later change is one second newer."""
MIX = (("metadata", 0.7), ("delete", 0.1), ("create", 0.1), ("text", 0.1))


@dataclass(frozen=True)
class Change:
    """One change of a knowledge article: its state after the change (a delete keeps the last state)."""

    op: str
    key: str
    title: str
    text: str
    url: str
    tags: tuple[str, ...]
    version_ms: int

    def article(self) -> dict[str, Any]:
        """The change as a `kb_article` record."""
        updated_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.version_ms / 1000)) + "Z"
        record: dict[str, Any] = {"id": self.key, "updated_at": updated_at}
        if self.op == "delete":
            return {**record, "deleted": True}
        return {**record, "title": self.title, "text": self.text, "url": self.url, "tags": list(self.tags)}


def change_stream(
    texts: Iterator[tuple[str, str, str]], *, base: int, events: int, seed: int = 18
) -> tuple[list[Change], list[Change]]:
    """The base documents' creates and `events` changes in the `MIX` proportions, shuffled."""
    rng = random.Random(seed)
    clock = iter(range(START_MS, START_MS + (base + events + 1) * 1000, 1000))
    live: dict[str, Change] = {}

    def create() -> Change:
        pid, title, text = next(texts)
        change = Change("create", f"cdc-{pid}", title, text, f"https://kb.example/{pid}", ("new",), next(clock))
        live[change.key] = change
        return change

    base_changes = [create() for _ in range(base)]
    ops = [op for op, share in MIX for _ in range(round(share * events))][:events]
    ops += ["metadata"] * (events - len(ops))
    rng.shuffle(ops)
    stream = []
    for op in ops:
        if op == "create" or not live:
            stream.append(create())
            continue
        current = live[rng.choice(sorted(live))]
        if op == "metadata":
            change = replace(
                current, op=op, url=f"{current.url.split('#')[0]}#v{len(stream)}", tags=(f"t{rng.randrange(50)}",)
            )
        elif op == "text":
            change = replace(
                current, op=op, text=f"{current.text} Revised {len(stream)}: {next(texts)[2][:200].strip()}"
            )
        else:
            change = replace(current, op=op)
        change = replace(change, version_ms=next(clock))
        if op == "delete":
            del live[change.key]
        else:
            live[change.key] = change
        stream.append(change)
    return base_changes, stream


def final_state(changes: list[Change]) -> dict[str, Change]:
    """The live documents after `changes`, by key."""
    live: dict[str, Change] = {}
    for change in changes:
        if change.op == "delete":
            live.pop(change.key, None)
        else:
            live[change.key] = change
    return live


class MiniLMEmbeddings:
    """The process's streamdesk embedder as a LangChain `Embeddings`; counts the texts it embeds."""

    def __init__(self) -> None:
        self.embedder = embedders.get_embedder()
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts` in one call."""
        self.embedded += len(texts)
        return [[float(x) for x in row] for row in self.embedder.embed(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.embed_documents([text])[0]


def _langchain_store(url: str, embeddings: MiniLMEmbeddings) -> Any:
    from langchain_core.embeddings import Embeddings
    from langchain_postgres import PGVector

    Embeddings.register(MiniLMEmbeddings)
    return PGVector(embeddings=cast(Embeddings, embeddings), collection_name=COLLECTION, connection=url, use_jsonb=True)


def _document(change: Change) -> Any:
    from langchain_core.documents import Document

    return Document(
        page_content=change.text, metadata={"title": change.title, "url": change.url, "tags": list(change.tags)}
    )


def run_langchain(url: str, *, base: list[Change], stream: list[Change]) -> dict[str, Any]:
    """Load `base`, then apply `stream` one change at a time (delete and add); time the stream."""
    embeddings = MiniLMEmbeddings()
    store = _langchain_store(url, embeddings)
    store.add_documents([_document(c) for c in base], ids=[c.key for c in base])
    embeddings.embedded = 0
    started = time.perf_counter()
    for change in stream:
        if change.op != "create":
            store.delete(ids=[change.key])
        if change.op != "delete":
            store.add_documents([_document(change)], ids=[change.key])
    seconds = time.perf_counter() - started
    rate = round(len(stream) / seconds, 2)
    return {"seconds": round(seconds, 2), "events_per_s": rate, "embedded": embeddings.embedded}


def publish_changes(publisher: Publisher, changes: list[Change]) -> None:
    """Publish `changes` as `kb_article` messages keyed by article id, and wait for the broker's acks."""
    for change in changes:
        publisher.publish(
            MAPPED_TOPIC, json.dumps(change.article()).encode(), key=change.key, headers={"mapping": KB_ARTICLE_MAPPING}
        )
    publisher.flush()


def stored_documents(conn: psycopg.Connection) -> int:
    """Live articles in streamdesk's store."""
    row = conn.execute("SELECT count(*) FROM documents WHERE source = %s AND NOT deleted", (SOURCE,)).fetchone()
    return int(row[0]) if row else 0


def _versions(url: str) -> dict[str, int]:
    with db.connect(url) as conn:
        rows = conn.execute("SELECT external_id, version[1] FROM documents WHERE source = %s", (SOURCE,)).fetchall()
    return {key: int(version) for key, version in rows}


def _wait_for_versions(stack: IngestStack, want: dict[str, int], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        got = _versions(stack.database_url)
        if all(got.get(key) == version for key, version in want.items()):
            return
        if stack.worker.poll() is not None:
            raise EvalError(f"ingest worker exited with {stack.worker.returncode}; see {stack.log_path}")
        if time.monotonic() > deadline:
            behind = sum(got.get(key) != version for key, version in want.items())
            raise EvalError(f"{behind} documents not at their last version after {timeout_s}s; see {stack.log_path}")
        time.sleep(0.05)


def _last_versions(changes: list[Change]) -> dict[str, int]:
    return {change.key: change.version_ms for change in changes}


def run_streamdesk(stack: IngestStack, *, base: list[Change], stream: list[Change], timeout_s: float) -> dict[str, Any]:
    """Publish `base` and wait for it, then publish `stream` at once and time it until every change is stored."""
    with Publisher(stack.bootstrap_servers, client_id="bench-cdc") as publisher:
        publish_changes(publisher, base)
        _wait_for_versions(stack, _last_versions(base), timeout_s=timeout_s)
        started = time.perf_counter()
        publish_changes(publisher, stream)
        _wait_for_versions(stack, _last_versions(base + stream), timeout_s=timeout_s)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "events_per_s": round(len(stream) / seconds, 2)}


def _whole_text(chunks: list[tuple[str, int, int]]) -> str:
    """The text the chunks cover, overlaps removed."""
    text = ""
    for piece, start, _end in chunks:
        text = text[:start] + piece
    return text


def check_streamdesk(url: str, want: dict[str, Change]) -> list[str]:
    """Differences between streamdesk's live documents and `want`."""
    with db.connect(url) as conn:
        docs = conn.execute(
            "SELECT external_id, url FROM documents WHERE source = %s AND NOT deleted", (SOURCE,)
        ).fetchall()
        rows = conn.execute(
            "SELECT external_id, text, char_start, char_end FROM chunks WHERE source = %s "
            "ORDER BY external_id, chunk_no",
            (SOURCE,),
        ).fetchall()
    chunks: dict[str, list[tuple[str, int, int]]] = {}
    for key, text, start, end in rows:
        chunks.setdefault(key, []).append((text, start, end))
    got = {key: (doc_url, _whole_text(chunks.get(key, []))) for key, doc_url in docs}
    return _differences("streamdesk", got, want, orphans=set(chunks) - set(got))


def check_langchain(url: str, want: dict[str, Change]) -> list[str]:
    """Differences between the LangChain collection's documents and `want`."""
    with db.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT e.id, e.document, e.cmetadata->>'url' FROM langchain_pg_embedding e
            JOIN langchain_pg_collection c ON c.uuid = e.collection_id WHERE c.name = %s
            """,
            (COLLECTION,),
        ).fetchall()
    got = {key: (doc_url, text) for key, text, doc_url in rows}
    return _differences("langchain", got, want, orphans=set())


def _differences(
    side: str, got: dict[str, tuple[str, str]], want: dict[str, Change], *, orphans: set[str]
) -> list[str]:
    problems = [f"{side}: {key} missing" for key in sorted(set(want) - set(got))]
    problems += [f"{side}: {key} should be deleted" for key in sorted(set(got) - set(want))]
    problems += [f"{side}: chunks of deleted {key} left" for key in sorted(orphans)]
    for key in sorted(set(got) & set(want)):
        if got[key] != (want[key].url, want[key].text):
            problems.append(f"{side}: {key} has stale url or text")
    return problems


def run(*, shared_data: Path, events: int = 1000, base: int = 200, timeout_s: float = 1800) -> dict[str, Any]:
    """Replay one change stream through both pipelines; check both final states; return both rates."""
    base_changes, stream = change_stream(passages(shared_data, words=100), base=base, events=events)
    want = final_state(base_changes + stream)
    with tempfile.TemporaryDirectory(prefix="streamdesk-bench-cdc-") as tmp, ingest_stack(Path(tmp)) as stack:
        ours = run_streamdesk(stack, base=base_changes, stream=stream, timeout_s=timeout_s)
        peer = run_langchain(stack.database_url, base=base_changes, stream=stream)
        problems = check_streamdesk(stack.database_url, want) + check_langchain(stack.database_url, want)
    if problems:
        raise EvalError(f"{len(problems)} final-state differences, first: {'; '.join(problems[:5])}")
    counts = {op: sum(c.op == op for c in stream) for op, _ in MIX}
    return {
        "events": len(stream),
        "base": len(base_changes),
        "mix": counts,
        "live_documents": len(want),
        "streamdesk": ours,
        "langchain": peer,
        "ratio": round(ours["events_per_s"] / peer["events_per_s"], 2),
        "final_state_ok": True,
    }
