"""Crash test: SIGKILL the ingest worker at three random moments during a 2,000-event replay.

After the last restart the store must equal the expected final state exactly: 0 lost, 0 duplicated,
0 resurrected.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from streamdesk.config import get_settings
from streamdesk.ingest import status as ingest_status
from streamdesk.knowledge import chunking, embedders
from streamdesk.seed.changes import generate_changes
from tests.ingest.conftest import IngestStack

pytestmark = [pytest.mark.slow, pytest.mark.stack]
SEED = 20261123
EVENTS = 2000
KILLS = 3


def test_store_equals_expected_state_after_three_sigkills(ingest_stack: IngestStack) -> None:
    stream = generate_changes(events=EVENTS, seed=SEED, late_events=40)
    rng = random.Random(SEED)

    def publish() -> None:
        with ingest_stack.publisher() as pub:
            for n, message in enumerate(stream.messages):
                pub.publish(message.topic, message.value, key=message.key, headers=message.headers)
                if n % 50 == 49:
                    pub.flush()
                    time.sleep(0.25)

    producer = threading.Thread(target=publish)
    started = time.monotonic()
    producer.start()
    kill_at = sorted(rng.uniform(3.0, 25.0) for _ in range(KILLS))
    lag_at_kill = []
    for moment in kill_at:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        ingest_stack.kill_worker()
        lag_at_kill.append(sum(ingest_status.ingest_lag(ingest_stack.bootstrap_servers).values()))
        ingest_stack.start_worker()
    producer.join()

    stable: dict[str, object] = {}

    def settled() -> bool:
        if sum(ingest_status.ingest_lag(ingest_stack.bootstrap_servers).values()) != 0:
            return False
        snapshot = ingest_stack.query("SELECT count(*), max(updated_at) FROM entities")[0] + tuple(
            ingest_stack.query("SELECT count(*), max(updated_at) FROM chunks")[0]
        )
        if stable.get("snapshot") != snapshot:
            stable.update(snapshot=snapshot, since=time.monotonic())
            return False
        return time.monotonic() - float(stable["since"]) > 4.0  # type: ignore[arg-type]

    ingest_stack.wait_for(settled, timeout_s=600, what="ingest to drain after the kills")

    lost, resurrected, wrong = [], [], []
    stored = {
        (etype, ext): (deleted, attrs)
        for etype, ext, deleted, attrs in ingest_stack.query(
            "SELECT entity_type, external_id, deleted, attributes FROM entities WHERE external_id LIKE 'chg-%%'"
        )
    }
    for key, expected in stream.expected_entities.items():
        row = stored.get(key)
        if expected is None:
            if row is not None and not row[0]:
                resurrected.append(key)
        elif row is None or row[0]:
            lost.append(key)
        else:
            mismatched = {k: v for k, v in expected.items() if row[1].get(k) != v}
            if mismatched:
                wrong.append((key, mismatched))
    phantom = [k for k, (deleted, _) in stored.items() if not deleted and k not in stream.expected_entities]

    settings = get_settings().ingest
    tokenizer = embedders.get_embedder().tokenizer
    documents = {
        ext: (deleted, title, level)
        for ext, deleted, title, level in ingest_stack.query(
            "SELECT external_id, deleted, title, access_level FROM documents WHERE external_id LIKE 'chg-%%'"
        )
    }
    chunk_rows: dict[str, list[tuple[int, str]]] = {}
    for ext, chunk_no, text in ingest_stack.query(
        "SELECT external_id, chunk_no, text FROM chunks WHERE external_id LIKE 'chg-%%' ORDER BY 1, 2"
    ):
        chunk_rows.setdefault(ext, []).append((chunk_no, text))
    duplicated = []
    for doc_id, expected_doc in stream.expected_documents.items():
        row = documents.get(doc_id)
        if expected_doc is None:
            if (row is not None and not row[0]) or chunk_rows.get(doc_id):
                resurrected.append(doc_id)
            continue
        if row is None or row[0]:
            lost.append(doc_id)
            continue
        want = [
            c.text
            for c in chunking.chunk_text(
                expected_doc["text"],
                tokenizer=tokenizer,
                max_tokens=settings.chunk_tokens,
                overlap=settings.chunk_overlap,
            )
        ]
        got = [text for _, text in chunk_rows.get(doc_id, [])]
        if len(got) > len(want):
            duplicated.append(doc_id)
        if got != want or row[1] != expected_doc["title"] or row[2] != expected_doc["access"]:
            wrong.append((doc_id, {"chunks": len(got), "expected_chunks": len(want), "title": row[1]}))

    assert ingest_stack.worker is not None and ingest_stack.worker.poll() is None, "worker must be running"
    assert not lost, f"lost: {lost[:10]}"
    assert not resurrected, f"resurrected: {resurrected[:10]}"
    assert not duplicated, f"duplicated: {duplicated[:10]}"
    assert not phantom, f"phantom rows: {phantom[:10]}"
    assert not wrong, f"wrong final state: {wrong[:5]}"
    assert len(stream.expected_entities) + len(stream.expected_documents) > 200
    assert sum(1 for lag in lag_at_kill if lag > 0) >= 2, f"kills must land mid-stream; lag at kills: {lag_at_kill}"
