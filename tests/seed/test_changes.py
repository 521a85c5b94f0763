"""The change stream is deterministic, versions only increase, and its expected state is right."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from streamdesk.seed import changes
from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.wire import AccessLevel, DebeziumLog, RawRecord, iso_from_ms, kb_article_record, kb_delete_record


def _article(article_id: str, text: str, ts_ms: int, access: AccessLevel = "public") -> RawRecord:
    return kb_article_record(
        {
            "id": article_id,
            "title": article_id.upper(),
            "text": text,
            "access": access,
            "groups": [],
            "updated_at": iso_from_ms(ts_ms),
        }
    )


def test_expected_state_of_a_hand_checked_stream() -> None:
    log = DebeziumLog()
    c1, c1b = {"id": "c1", "email": "a@x"}, {"id": "c1", "email": "b@x"}
    c2, p1, p1b = {"id": "c2", "email": "c@x"}, {"id": "p1", "name": "lamp"}, {"id": "p1", "name": "lamp 2"}
    created_c1 = log.create("customers", c1)
    messages = [
        created_c1,
        log.update("customers", c1, c1b),
        log.create("customers", c2),
        *log.delete("customers", c2),
        RawRecord(created_c1.topic, created_c1.key, created_c1.value, late=True),
        log.create("products", p1),
        *log.delete("products", p1),
        log.create("products", p1b),
        _article("a1", "old text", 1_000),
        _article("a1", "new text", 2_000),
        _article("a1", "old text", 1_000),
        _article("a2", "gone soon", 3_000),
        kb_delete_record(article_id="a2", updated_at=iso_from_ms(4_000)),
        _article("a3", "same text", 5_000),
        _article("a3", "same text", 6_000, access="internal"),
    ]
    entities, documents = changes.expected_state(messages)
    assert entities == {("customer", "c1"): c1b, ("customer", "c2"): None, ("product", "p1"): p1b}
    assert documents == {
        "a1": {"title": "A1", "text": "new text", "access": "public"},
        "a2": None,
        "a3": {"title": "A3", "text": "same text", "access": "internal"},
    }


def test_a_fixed_seed_gives_the_same_stream() -> None:
    first = changes.generate_changes(events=300, seed=11, late_events=5)
    again = changes.generate_changes(events=300, seed=11, late_events=5)
    other = changes.generate_changes(events=300, seed=12, late_events=5)
    assert first == again
    assert first.messages != other.messages


def test_the_stream_mixes_every_kind_of_change() -> None:
    stream = changes.generate_changes(events=1000, seed=1, late_events=10)
    assert len(stream.messages) == 1010 and stream.late == 10
    kinds: Counter[str] = Counter()
    seen_texts: dict[str, set[str]] = {}
    deleted: set[bytes | None] = set()
    for message in stream.messages:
        if message.late:
            continue
        if message.value is None:
            kinds["tombstone"] += 1
            continue
        body = json.loads(message.value)
        if message.topic == "raw.mapped":
            texts = seen_texts.setdefault(body["id"], set())
            kind = "kb delete" if body.get("deleted") else "kb same text" if body["text"] in texts else "kb new text"
            if not body.get("deleted"):
                texts.add(body["text"])
        else:
            kind = body["op"]
        if message.key in deleted and kind in {"c", "kb new text"}:
            kinds["re-create"] += 1
        if kind in {"d", "kb delete"}:
            deleted.add(message.key)
        else:
            deleted.discard(message.key)
        kinds[kind] += 1
    assert set(kinds) == {"c", "u", "d", "tombstone", "re-create", "kb new text", "kb same text", "kb delete"}
    assert kinds["d"] == kinds["tombstone"]
    per_key = Counter((m.topic, m.key) for m in stream.messages if m.value is not None and not m.late)
    assert sorted(per_key.values())[len(per_key) // 2] >= 3  # the median key changes several times
    assert None in stream.expected_entities.values() and None in stream.expected_documents.values()


def test_versions_only_increase_per_key_except_late_events() -> None:
    stream = changes.generate_changes(events=800, seed=5, late_events=8)
    lsns = [
        json.loads(m.value)["source"]["lsn"]
        for m in stream.messages
        if m.value and m.topic != "raw.mapped" and not m.late
    ]
    stamps = [
        json.loads(m.value or b"")["updated_at"] for m in stream.messages if m.topic == "raw.mapped" and not m.late
    ]
    assert all(a < b for a, b in itertools.pairwise(lsns))
    assert all(a < b for a, b in itertools.pairwise(stamps))
    originals = {(m.topic, m.key, m.value) for m in stream.messages if not m.late}
    assert all((m.topic, m.key, m.value) in originals for m in stream.messages if m.late)


def test_the_generator_state_equals_the_fold_and_late_events_change_nothing() -> None:
    stream = changes.generate_changes(events=600, seed=9, late_events=12)
    on_time = [m for m in stream.messages if not m.late]
    assert changes.expected_state(stream.messages) == (stream.expected_entities, stream.expected_documents)
    assert changes.expected_state(on_time) == (stream.expected_entities, stream.expected_documents)


def test_tables_and_ids_are_chosen_by_the_caller() -> None:
    stream = changes.generate_changes(events=40, seed=2, tables=("order_items", "kb_article"), id_prefix="bench")
    assert set(stream.counts()) == {"raw.debezium.order_items", "raw.mapped"}
    assert all(key.startswith("bench-") for _, key in stream.expected_entities)
    with pytest.raises(SeedError, match="unknown \\['invoices'\\]"):
        changes.generate_changes(events=10, seed=1, tables=("invoices",))
    with pytest.raises(SeedError, match="late_events=5 needs keys updated at least twice"):
        changes.generate_changes(events=1, seed=1, late_events=5)
