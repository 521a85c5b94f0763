"""Generated Debezium events have the shape of the real captured ones in shared/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamdesk.seed import changes, taubench
from streamdesk.seed.wire import DebeziumLog, RawRecord, kb_article_record, kb_delete_record, ms_from_iso

ROW = {"id": "c1", "first_name": "Anne", "address": {"city": "Denver"}}


def _fixtures(shared_data: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cdc = shared_data / "cdc" / "debezium"
    flink = [json.loads(line) for line in (cdc / "flink_debezium_postgres_products.jsonl").read_text().splitlines()]
    docs = [
        json.loads(line) for line in (cdc / "debezium_docs_postgres_customers_events.jsonl").read_text().splitlines()
    ]
    return flink, [d for d in docs if d["op"] in {"c", "u", "d"}]


def _sample(shared_data: Path) -> list[RawRecord]:
    world = taubench.load_world(path=taubench.world_path(shared_data=shared_data))
    reads = list(taubench.snapshot_records(world=world, log=DebeziumLog(), limit=2))
    stream = changes.generate_changes(events=200, seed=3, tables=("customers", "orders", "products"))
    return reads + stream.messages


def test_envelope_and_source_fields_match_the_captured_fixtures(shared_data: Path) -> None:
    flink, docs = _fixtures(shared_data)
    envelope_keys = set(flink[0]) | set(docs[0]["value"]["payload"])
    source_keys = set(flink[0]["source"]) | set(docs[0]["value"]["payload"]["source"])
    ops_seen = set()
    for record in _sample(shared_data):
        if record.value is None:
            continue
        value = json.loads(record.value)
        ops_seen.add(value["op"])
        assert set(value) == envelope_keys
        assert set(value["source"]) == source_keys
        assert value["source"]["connector"] == "postgresql"
        assert value["source"]["version"] == "2.7.0.Final"
        assert value["source"]["table"] == record.topic.removeprefix("raw.debezium.")
        assert value["source"]["snapshot"] == ("true" if value["op"] == "r" else "false")
        assert all(isinstance(value["source"][k], int) for k in ("ts_ms", "txId", "lsn"))
        assert json.loads(value["source"]["sequence"])[1] == str(value["source"]["lsn"])
        reference = next(f for f in flink if f["op"] == value["op"])
        assert (value["before"] is None) == (reference["before"] is None)
        assert (value["after"] is None) == (reference["after"] is None)
        assert json.loads(record.key or b"") == {"id": (value["after"] or value["before"])["id"]}
    assert ops_seen == {f["op"] for f in flink} == {"r", "c", "u", "d"}


def test_delete_is_followed_by_a_tombstone_with_the_same_key() -> None:
    log = DebeziumLog()
    deleted, tombstone = log.delete("customers", ROW)
    assert json.loads(deleted.value or b"")["op"] == "d"
    assert (tombstone.topic, tombstone.key, tombstone.value) == (deleted.topic, b'{"id":"c1"}', None)


def test_lsns_strictly_increase_and_nested_columns_stay_objects() -> None:
    log = DebeziumLog()
    records = [log.read("customers", ROW), log.create("customers", ROW), log.update("customers", ROW, ROW)]
    records += log.delete("customers", ROW)
    lsns = [json.loads(r.value)["source"]["lsn"] for r in records if r.value is not None]
    assert lsns == sorted(set(lsns))
    assert json.loads(records[0].value or b"")["after"]["address"] == {"city": "Denver"}


def test_kb_article_messages_carry_the_mapping_header() -> None:
    article = kb_article_record(
        {"id": "a1", "title": "T", "text": "x", "access": "public", "groups": [], "updated_at": "2025-01-01T00:00:00Z"}
    )
    deleted = kb_delete_record(article_id="a1", updated_at="2025-01-02T00:00:00.000+00:00")
    assert article.topic == deleted.topic == "raw.mapped"
    assert article.headers == deleted.headers == {"mapping": "kb_article"}
    assert article.key == b"a1"
    assert json.loads(deleted.value or b"") == {
        "id": "a1",
        "deleted": True,
        "updated_at": "2025-01-02T00:00:00.000+00:00",
    }
    assert ms_from_iso("2025-01-02T00:00:00.000+00:00") - ms_from_iso("2025-01-01T00:00:00Z") == 86_400_000


@pytest.mark.parametrize("row", [{"name": "no id"}])
def test_a_row_without_an_id_is_refused(row: dict[str, Any]) -> None:
    from streamdesk.seed.exceptions import SeedError

    with pytest.raises(SeedError, match="'id' column"):
        DebeziumLog().read("customers", row)


def test_every_generated_message_meets_its_raw_topic_contract(shared_data: Path) -> None:
    from streamdesk import contracts, topics
    from streamdesk.seed import service

    records, _ = service.seed_records(shared_data=shared_data, limit=5)
    records += changes.generate_changes(events=300, seed=8, late_events=3).messages
    for record in records:
        if record.value is not None:
            contracts.validate(topics.spec(record.topic).schema, json.loads(record.value))
