"""End to end through the real worker: vendor payloads in, rows and vectors out, bad input dead-lettered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from streamdesk.knowledge import embedders
from tests.ingest.conftest import MAX_BODY_BYTES, IngestStack

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def kb_article(article_id: str, title: str, text: str, **extra: object) -> bytes:
    return json.dumps(
        {"id": article_id, "title": title, "text": text, "updated_at": "2026-11-01T10:00:00Z", **extra}
    ).encode()


def test_a_debezium_payload_sent_with_kcat_becomes_a_queryable_customer(
    ingest_stack: IngestStack, shared_data: Path, kcat: tuple[str, dict[str, str]]
) -> None:
    binary, env = kcat
    payload = shared_data / "cdc" / "debezium" / "debezium_test_serde-update.json"
    subprocess.run(
        [
            binary,
            "-P",
            "-b",
            ingest_stack.bootstrap_servers,
            "-t",
            "raw.debezium.customers",
            "-k",
            '{"id":1004}',
            str(payload),
        ],
        check=True,
        timeout=30,
        env=env,
    )
    rows = ingest_stack.wait_for(
        lambda: ingest_stack.query(
            "SELECT attributes FROM entities WHERE entity_type = 'customer' AND external_id = '1004' AND NOT deleted"
        ),
        what="customer 1004 from kcat",
    )
    assert rows[0][0]["first_name"] == "Anne"
    assert rows[0][0]["email"] == "annek@noanswer.org"


def test_an_article_becomes_chunks_found_by_vector_search(ingest_stack: IngestStack) -> None:
    text = (
        "Refunds for damaged items are issued to the original payment method within five business days. "
        "Customers must report the damage within thirty days of delivery and include a photo."
    )
    with ingest_stack.publisher() as pub:
        pub.publish(
            "raw.mapped",
            kb_article("kb-refunds", "Damaged item refunds", text),
            key="kb-refunds",
            headers={"mapping": "kb_article"},
        )
    ingest_stack.wait_for(
        lambda: ingest_stack.query("SELECT 1 FROM chunks WHERE external_id = 'kb-refunds'"), what="article chunks"
    )
    query = embedders.get_embedder().embed(["how long until I get my money back for a broken product?"])[0]
    nearest = ingest_stack.query(
        "SELECT external_id, embedding_model FROM chunks ORDER BY embedding <=> %s LIMIT 1", query
    )
    assert nearest[0][0] == "kb-refunds"
    assert nearest[0][1]


BAD_INPUTS = {
    "invalid json": ("raw.mapped", b"{not json", {"mapping": "kb_article"}),
    "truncated json": ("raw.debezium.customers", b'{"op":"c","after":{"id":1,"first_na', {}),
    "schema violation": ("raw.mapped", json.dumps({"title": "no id"}).encode(), {"mapping": "kb_article"}),
    "wrong types": (
        "raw.debezium.customers",
        json.dumps({"op": "c", "after": "not-a-row", "before": None}).encode(),
        {},
    ),
    "unknown event type": (
        "raw.zendesk",
        json.dumps(
            {
                "type": "zen:event-type:ticket.exploded",
                "id": "e1",
                "time": "2026-01-01T00:00:00Z",
                "detail": {"id": "1"},
            }
        ).encode(),
        {},
    ),
    "oversized body": (
        "raw.mapped",
        kb_article("kb-huge", "Huge", "x" * (MAX_BODY_BYTES + 10)),
        {"mapping": "kb_article"},
    ),
    "not utf-8": ("raw.hubspot", b"\xff\xfe\x00garbage", {}),
}


def test_each_kind_of_bad_input_is_dead_lettered_and_the_good_ones_around_it_are_stored(
    ingest_stack: IngestStack,
) -> None:
    with ingest_stack.publisher() as pub:
        for n, (topic, value, headers) in enumerate(BAD_INPUTS.values()):
            good_id = f"kb-good-{n}"
            pub.publish(
                "raw.mapped",
                kb_article(good_id, f"Good {n}", f"Valid article number {n}."),
                key=good_id,
                headers={"mapping": "kb_article"},
            )
            pub.publish(topic, value, key=f"bad-{n}", headers=headers)
    ingest_stack.wait_for(
        lambda: len(ingest_stack.query("SELECT 1 FROM dead_letters WHERE key LIKE 'bad-%%'")) >= len(BAD_INPUTS),
        what="dead letters",
    )
    letters = {
        bytes(key).decode(): (reason, bytes(value) if value is not None else None)
        for key, reason, value in ingest_stack.query(
            "SELECT key, reason, value FROM dead_letters WHERE key LIKE 'bad-%%'"
        )
    }
    for n, (name, (_, value, _)) in enumerate(BAD_INPUTS.items()):
        reason, original = letters[f"bad-{n}"]
        assert reason, name
        assert original == value, f"{name}: original bytes must be kept"
    good = ingest_stack.wait_for(
        lambda: (
            rows
            if len(rows := ingest_stack.query("SELECT external_id FROM documents WHERE external_id LIKE 'kb-good-%%'"))
            == len(BAD_INPUTS)
            else None
        ),
        what="the valid articles around the bad ones",
    )
    assert len(good) == len(BAD_INPUTS)

    seen = list(ingest_stack.dead_letters_on_topic(group="dlq-test", wanted=len(BAD_INPUTS)).values())
    assert len(seen) >= len(BAD_INPUTS)
    assert all(letter["reason"] and letter["stage"] == "raw" for letter in seen)
