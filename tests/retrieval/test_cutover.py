"""Embedding cut-over: backfill a shadow space, compare, cut over and drop the old vectors while searches run."""

from __future__ import annotations

import threading
import time

import pytest

from streamdesk import db
from streamdesk.config import IngestSettings, Settings
from streamdesk.identity.models import Principal
from streamdesk.knowledge import embedders
from streamdesk.retrieval import cutover, service
from tests.retrieval.conftest import TOPICS
from tests.retrieval.factories import document, store

pytestmark = [pytest.mark.slow, pytest.mark.stack]
DEFAULT = IngestSettings()
SOURCE = f"{DEFAULT.embedding_model}@{DEFAULT.embedding_version}"
"""The space a store starts in: the settings' default embedder (ONNX int8)."""
TARGET, TARGET_BACKEND = ("1", "torch") if DEFAULT.embedding_backend != "torch" else ("2-onnx-int8", "onnx-int8")
"""The space the tests cut over to: the other embedder (PyTorch fp32, version 1)."""
PRINCIPAL = Principal.parse("user:mo?roles=agent")


class SearchLoop(threading.Thread):
    """Searches continuously on its own connection, recording failures, empty results and spaces seen."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.empty, self.count = url, threading.Event(), 0, 0
        self.errors: list[str] = []
        self.spaces: list[str | None] = []

    def run(self) -> None:
        with db.connect(self.url) as conn:
            while not self.stop.is_set():
                try:
                    result = service.search(conn=conn, query="card payment declined abroad", principal=PRINCIPAL, k=3)
                    self.count += 1
                    self.empty += not result.hits
                    if not self.spaces or self.spaces[-1] != result.embedding_space:
                        self.spaces.append(result.embedding_space)
                except Exception as exc:  # recorded and asserted on below
                    self.errors.append(repr(exc))
                    conn.rollback()
                time.sleep(0.01)


def test_switching_embedding_versions_while_searches_keep_succeeding(clean_db: str) -> None:
    store(clean_db, [document(f"t-{name}", f"{name.title()} help", text) for name, text in TOPICS.items()])
    loop = SearchLoop(clean_db)
    loop.start()
    try:
        target = cutover.start(clean_db, model="all-MiniLM-L6-v2", version=TARGET, backend=TARGET_BACKEND, path=None)
        assert cutover.backfill(clean_db, space=target, progress=False) == len(TOPICS)
        store(
            clean_db,
            [document("t-travel", "Travel help", "Tell us before you travel so cards keep working.", version=2)],
        )
        with db.connect(clean_db) as conn:
            assert conn.execute("SELECT count(*) FROM chunks WHERE embedding_shadow IS NULL").fetchone() == (1,)
        cutover.build_shadow_indexes(clean_db)
        comparison = cutover.compare(clean_db, sample=8)
        assert comparison["agreement_at_10"] >= 0.8
        active = cutover.cut_over(clean_db)
        assert active.version == TARGET
        time.sleep(0.3)
        assert cutover.finish(clean_db, progress=False) == 0
    finally:
        loop.stop.set()
        loop.join(10)
    assert not loop.errors, loop.errors[:3]
    assert loop.count > 5 and loop.empty == 0
    assert loop.spaces == [SOURCE, f"all-MiniLM-L6-v2@{TARGET}"]
    with db.connect(clean_db) as conn:
        versions = conn.execute("SELECT DISTINCT embedding_version FROM chunks").fetchall()
        leftovers = conn.execute("SELECT count(embedding_shadow) FROM chunks").fetchone()
        states: dict[str, str] = dict(conn.execute("SELECT name, state FROM embedding_spaces").fetchall())
        top = service.search(conn=conn, query="I forgot my password", principal=PRINCIPAL, k=1)
    assert versions == [(TARGET,)] and leftovers == (0,)
    assert states == {SOURCE: "retired", f"all-MiniLM-L6-v2@{TARGET}": "active"}
    assert top.hits[0].citation.external_id == "t-password"
    new_embedder = embedders.cached_embedder(
        backend=TARGET_BACKEND, path=None, model_name="all-MiniLM-L6-v2", version=TARGET
    )
    again = store(clean_db, [document("t-refund", "Refund help", TOPICS["refund"])], embedder=new_embedder)
    assert again.chunks_embedded == 0, "backfilled chunk hashes let the new-model writer reuse the vectors"


def test_a_store_moves_to_the_space_the_settings_name(clean_db: str) -> None:
    """What `up` does when the settings name another embedding than the store's: the zero-downtime cut-over."""
    store(clean_db, [document(f"t-{name}", f"{name.title()} help", text) for name, text in TOPICS.items()])
    new = Settings(ingest=IngestSettings(embedding_version=TARGET, embedding_backend=TARGET_BACKEND))
    report = cutover.follow_settings(clean_db, settings=new)
    assert report is not None and report.cut_over and report.dropped_old and report.backfilled == len(TOPICS)
    with db.connect(clean_db) as conn:
        assert cutover.active_space(conn).name == f"all-MiniLM-L6-v2@{TARGET}"
        assert conn.execute("SELECT DISTINCT embedding_version FROM chunks").fetchall() == [(TARGET,)]
    assert cutover.follow_settings(clean_db, settings=new) is None
