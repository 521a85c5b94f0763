"""Document store: version ordering, tombstones, chunk replacement, embedding reuse, access scope."""

from __future__ import annotations

import logging
from dataclasses import astuple
from typing import Any

import numpy as np
import psycopg
import pytest

from streamdesk import db
from streamdesk.contracts import DocumentEvent
from streamdesk.knowledge import store
from streamdesk.knowledge.chunking import chunk_text
from streamdesk.knowledge.embedding import Embedder, TextEmbedder, embedding_input
from streamdesk.knowledge.exceptions import InvalidDocumentEventError
from tests.knowledge.factories import ObservedEmbedder, document_event, prose
from tests.version_scenarios import Final, Step, ordering_cases, version_scenarios

TOKENS, OVERLAP = 100, 16
BODIES = {"a": prose(1, words=120), "b": prose(2, words=120), "c": prose(3, words=120)}


def apply(conn: psycopg.Connection, events: list[DocumentEvent], embedder: TextEmbedder) -> store.DocumentStats:
    stats = store.apply_documents(conn, events, embedder=embedder, chunk_tokens=TOKENS, chunk_overlap=OVERLAP)
    conn.commit()
    assert stats.upserted + stats.deleted + stats.stale + stats.unchanged == len(events)
    return stats


def document(conn: psycopg.Connection, external_id: str, source: str = "kb") -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT * FROM documents WHERE source = %s AND external_id = %s", (source, external_id)
        ).fetchone()


def vector(value: Any) -> np.ndarray:
    """A stored embedding as an array: pgvector >= 0.4 loads a `Vector`, 0.3 (langchain-postgres pins it) an array."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)


def chunks(conn: psycopg.Connection, external_id: str, source: str = "kb") -> list[dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT *, updated_at AS written_at FROM chunks WHERE source = %s AND external_id = %s ORDER BY chunk_no",
            (source, external_id),
        ).fetchall()


def assert_chunks_match(conn: psycopg.Connection, external_id: str, body: str, embedder: Embedder) -> None:
    expected = chunk_text(body, tokenizer=embedder.tokenizer, max_tokens=TOKENS, overlap=OVERLAP)
    stored = chunks(conn, external_id)
    assert [(c["chunk_no"], c["text"], c["char_start"], c["char_end"]) for c in stored] == [
        (c.chunk_no, c.text, c.char_start, c.char_end) for c in expected
    ]
    assert document(conn, external_id)["chunk_count"] == len(expected)  # type: ignore[index]


SCENARIOS = version_scenarios(
    "document",
    ("delete at the equal version applies", [("upsert", [5], "a"), ("delete", [5], None)], (True, [5], None), None),
    ("a longer version is newer", [("upsert", [3, 1], "a"), ("upsert", [3, 1, 0], "b")], (False, [3, 1, 0], "b"), None),
    (
        "tombstone after a delete is a no-op",
        [("upsert", [1], "a"), ("delete", [2], None), ("tombstone", [], None)],
        (True, [2], None),
        None,
    ),
)


@pytest.mark.parametrize(("steps", "together", "final"), ordering_cases(SCENARIOS))
def test_version_ordering(
    conn: psycopg.Connection, embedder: Embedder, steps: list[Step], together: bool, final: Final
) -> None:
    events = [document_event("doc-1", op, version, body=BODIES.get(key or "", "")) for op, version, key in steps]
    if together:
        apply(conn, events, embedder)
    else:
        for event in events:
            apply(conn, [event], embedder)
    deleted, version, key = final
    row = document(conn, "doc-1")
    assert row is not None and (row["deleted"], row["version"]) == (deleted, version)
    if deleted:
        assert chunks(conn, "doc-1") == [] and row["chunk_count"] == 0
    else:
        assert_chunks_match(conn, "doc-1", BODIES[key or ""], embedder)


def test_stale_and_unchanged_are_counted(conn: psycopg.Connection, embedder: Embedder) -> None:
    first = apply(conn, [document_event("d", version=[2], body=BODIES["a"])], embedder)
    assert (first.upserted, first.chunks_written, first.chunks_embedded) == (1, 2, 2)
    late = apply(conn, [document_event("d", version=[1], body=BODIES["b"])], embedder)
    assert astuple(late) == (0, 0, 1, 0, 0, 0, 0)
    batch = [document_event("d", version=[3], body=BODIES["b"]), document_event("d", version=[4], body=BODIES["c"])]
    both = apply(conn, batch, embedder)
    assert (both.upserted, both.stale, both.chunks_embedded) == (1, 1, 2), "only the newest of the batch is embedded"
    assert_chunks_match(conn, "d", BODIES["c"], embedder)


def test_chunks_are_replaced_when_a_document_shrinks(conn: psycopg.Connection, embedder: Embedder) -> None:
    long_body = prose(10, paragraphs=6, words=90)
    apply(conn, [document_event("d", version=[1], body=long_body)], embedder)
    assert len(chunks(conn, "d")) >= 6
    short_body = prose(11, words=60)
    stats = apply(conn, [document_event("d", version=[2], body=short_body)], embedder)
    assert (stats.upserted, stats.chunks_written) == (1, 1)
    assert_chunks_match(conn, "d", short_body, embedder)
    stats = apply(conn, [document_event("d", version=[3], body=" \n ")], embedder)
    assert chunks(conn, "d") == [] and document(conn, "d")["chunk_count"] == 0  # type: ignore[index]


def test_unchanged_text_is_never_re_embedded(conn: psycopg.Connection, embedder: Embedder) -> None:
    body = prose(20, paragraphs=3, words=100)
    counting = ObservedEmbedder(embedder)
    first = apply(conn, [document_event("d", version=[1], body=body)], counting)
    before = chunks(conn, "d")
    again = apply(conn, [document_event("d", version=[2], body=body)], counting)
    assert (again.unchanged, again.chunks_embedded, again.chunks_written) == (1, 0, 0)
    assert counting.calls == [first.chunks_embedded]
    row = document(conn, "d")
    assert row is not None and row["version"] == [2]
    assert [c["written_at"] for c in chunks(conn, "d")] == [c["written_at"] for c in before], "chunks untouched"
    copy = apply(conn, [document_event("copy", version=[1], body=body)], counting)
    assert (copy.upserted, copy.chunks_embedded, copy.chunks_reused, copy.chunks_written) == (
        1,
        0,
        len(before),
        len(before),
    )
    assert counting.calls == [first.chunks_embedded], "the copy reused the stored embeddings"
    np.testing.assert_array_equal(
        [vector(c["embedding"]) for c in chunks(conn, "copy")], [vector(c["embedding"]) for c in before]
    )


def test_editing_one_paragraph_re_embeds_only_the_changed_chunks(conn: psycopg.Connection, embedder: Embedder) -> None:
    paragraphs = [prose(30 + i, words=70) for i in range(6)]
    apply(conn, [document_event("d", version=[1], body="\n\n".join(paragraphs))], embedder)
    before = {c["chunk_no"]: c for c in chunks(conn, "d")}
    edited_paragraph = paragraphs[3].replace("customer", "agent", 1)
    assert edited_paragraph != paragraphs[3]
    paragraphs[3] = edited_paragraph
    edited = "\n\n".join(paragraphs)
    stats = apply(conn, [document_event("d", version=[2], body=edited)], embedder)
    after = {c["chunk_no"]: c for c in chunks(conn, "d")}

    def moved(no: int, *fields: str) -> bool:
        return no not in before or any(after[no][f] != before[no][f] for f in fields)

    new_text = [no for no in after if moved(no, "text")]
    rewritten = [no for no in after if moved(no, "text", "char_start", "char_end")]
    assert 1 <= len(new_text) < len(after)
    assert stats.chunks_embedded == len(new_text), "only chunks whose text changed are embedded"
    assert stats.chunks_written == len(rewritten), "chunks whose text and offsets are unchanged stay as they are"
    assert stats.chunks_reused == len(after) - len(new_text)
    for no in set(after) - set(rewritten):
        assert after[no]["written_at"] == before[no]["written_at"]
    assert_chunks_match(conn, "d", edited, embedder)


def test_stored_embeddings_are_the_models_embeddings_of_title_and_chunk(
    conn: psycopg.Connection, embedder: Embedder
) -> None:
    apply(conn, [document_event("d", body=prose(40, words=200), title="Card limits")], embedder)
    stored = chunks(conn, "d")
    expected = embedder.embed([embedding_input("Card limits", c["text"]) for c in stored])
    np.testing.assert_allclose([vector(c["embedding"]) for c in stored], expected, atol=1e-5)
    assert {(c["embedding_model"], c["embedding_version"]) for c in stored} == {(embedder.model_name, embedder.version)}
    assert all(c["token_count"] <= TOKENS for c in stored)


def test_access_scope_is_copied_into_every_chunk(conn: psycopg.Connection, embedder: Embedder) -> None:
    scope: dict[str, Any] = {
        "url": "https://kb.example/refunds",
        "doc_type": "policy",
        "tenant": "acme",
        "access": {"level": "restricted", "groups": ["finance", "support-leads"]},
    }
    body = prose(50, paragraphs=3, words=80)
    apply(conn, [document_event("d", body=body, title="Refunds", **scope)], embedder)
    stored = chunks(conn, "d")
    assert len(stored) >= 3
    for chunk in stored:
        assert (chunk["title"], chunk["url"], chunk["doc_type"], chunk["tenant"]) == (
            "Refunds",
            "https://kb.example/refunds",
            "policy",
            "acme",
        )
        assert (chunk["access_level"], chunk["access_groups"]) == ("restricted", ["finance", "support-leads"])
        assert chunk["occurred_at"] is not None
    opened: dict[str, Any] = {**scope, "access": {"level": "public", "groups": []}}
    stats = apply(conn, [document_event("d", version=[2], body=body, title="Refunds", **opened)], embedder)
    assert (stats.upserted, stats.chunks_embedded, stats.chunks_written) == (1, 0, len(stored))
    assert {(c["access_level"], tuple(c["access_groups"])) for c in chunks(conn, "d")} == {("public", ())}


def test_metadata_change_rewrites_the_document_but_no_chunk(conn: psycopg.Connection, embedder: Embedder) -> None:
    body = prose(60, words=150)
    apply(conn, [document_event("d", body=body, metadata={"author": "ann"})], embedder)
    stats = apply(conn, [document_event("d", version=[2], body=body, metadata={"author": "bob"})], embedder)
    assert (stats.upserted, stats.chunks_written, stats.chunks_embedded) == (1, 0, 0)
    assert document(conn, "d")["metadata"] == {"author": "bob"}  # type: ignore[index]


def test_a_batch_embeds_all_its_misses_in_one_call(conn: psycopg.Connection, embedder: Embedder) -> None:
    counting = ObservedEmbedder(embedder)
    shared = prose(70, words=90)
    events = [document_event(f"d{i}", body=prose(100 + i, words=150)) for i in range(6)]
    events += [document_event("same-1", body=shared), document_event("same-2", body=shared)]
    stats = apply(conn, events, counting)
    assert counting.calls == [stats.chunks_embedded]
    duplicates = len(chunks(conn, "same-2"))
    assert duplicates >= 1
    assert stats.chunks_written == stats.chunks_embedded + duplicates, "identical texts are embedded once"


def test_a_concurrent_newer_write_wins_over_the_batch(
    conn: psycopg.Connection, embedder: Embedder, clean_db: str
) -> None:
    def newer_write_during_embedding() -> None:
        if len(counting.calls) == 1:
            with db.connect(clean_db) as other:
                store.apply_documents(
                    other,
                    [document_event("d", version=[9], body=BODIES["b"])],
                    embedder=embedder,
                    chunk_tokens=TOKENS,
                    chunk_overlap=OVERLAP,
                )

    counting = ObservedEmbedder(embedder, before_call=newer_write_during_embedding)
    stats = apply(conn, [document_event("d", version=[5], body=BODIES["a"])], counting)
    assert (stats.upserted, stats.stale, stats.chunks_written) == (0, 1, 0)
    row = document(conn, "d")
    assert row is not None and row["version"] == [9]
    assert_chunks_match(conn, "d", BODIES["b"], embedder)


def test_transactions_are_left_to_the_caller(conn: psycopg.Connection, embedder: Embedder) -> None:
    store.apply_documents(
        conn, [document_event("d", body=BODIES["a"])], embedder=embedder, chunk_tokens=TOKENS, chunk_overlap=OVERLAP
    )
    conn.rollback()
    assert document(conn, "d") is None and chunks(conn, "d") == []


def test_an_autocommit_connection_gets_one_atomic_transaction(clean_db: str, embedder: Embedder) -> None:
    with db.connect(clean_db, autocommit=True) as auto:
        event = document_event("d", body=BODIES["a"])
        stats = store.apply_documents(auto, [event], embedder=embedder, chunk_tokens=TOKENS, chunk_overlap=OVERLAP)
        assert stats.upserted == 1
        assert document(auto, "d") is not None and len(chunks(auto, "d")) == stats.chunks_written


def test_upsert_without_version_is_refused(conn: psycopg.Connection, embedder: Embedder) -> None:
    with pytest.raises(InvalidDocumentEventError, match="empty version"):
        apply(conn, [document_event("d", version=[], body="x")], embedder)


def test_truncation_warning_is_logged_once(
    conn: psycopg.Connection, embedder: Embedder, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "_warned_truncation", False)
    with caplog.at_level(logging.WARNING, logger=store.__name__):
        for version in ([1], [2]):
            event = document_event("d", version=version, body=prose(version[0], words=400))
            store.apply_documents(conn, [event], embedder=embedder, chunk_tokens=256, chunk_overlap=32)
        store.apply_documents(
            conn, [document_event("e", body="x")], embedder=embedder, chunk_tokens=100, chunk_overlap=0
        )
    warnings = [r for r in caplog.records if "max_seq_length" in r.getMessage()]
    assert len(warnings) == 1 and "chunk_tokens=256" in warnings[0].getMessage()
