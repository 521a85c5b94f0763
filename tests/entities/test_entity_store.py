"""Entity store: version ordering, tombstones, partial merges, nulled and unchanged fields, read helpers."""

from __future__ import annotations

import uuid
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from streamdesk.contracts import EntityEvent, SourcePosition
from streamdesk.entities import store
from streamdesk.entities.exceptions import InvalidEntityEventError
from tests.version_scenarios import Final, Step, ordering_cases, version_scenarios


def entity(
    op: str = "upsert",
    version: list[int] | None = None,
    *,
    external_id: str = "c1",
    entity_type: str = "customer",
    source: str = "crm",
    **fields: Any,
) -> EntityEvent:
    return EntityEvent(
        event_id=str(uuid.uuid4()),
        source=source,
        entity_type=entity_type,
        external_id=external_id,
        op=op,
        version=([] if op == "tombstone" else [1]) if version is None else version,
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        **fields,
    )


def apply(conn: psycopg.Connection, events: list[EntityEvent]) -> store.EntityStats:
    stats = store.apply_entities(conn, events)
    conn.commit()
    assert stats.upserted + stats.deleted + stats.stale + stats.unchanged == len(events)
    return stats


def row(conn: psycopg.Connection, external_id: str = "c1") -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT deleted, version, attributes FROM entities WHERE entity_type = 'customer' AND source = 'crm' "
        "AND external_id = %s",
        (external_id,),
    ).fetchone()


def named(name: str) -> dict[str, Any]:
    return {"name": name}


SCENARIOS = version_scenarios("entity")


@pytest.mark.parametrize(("steps", "together", "final"), ordering_cases(SCENARIOS))
def test_version_ordering(conn: psycopg.Connection, steps: list[Step], together: bool, final: Final) -> None:
    events = [entity(op, version, attributes=named(value) if value else {}) for op, version, value in steps]
    if together:
        apply(conn, events)
    else:
        for event in events:
            apply(conn, [event])
    deleted, version, value = final
    assert row(conn) == (deleted, version, named(value) if value else {})


def test_stats_count_each_event(conn: psycopg.Connection) -> None:
    assert astuple(apply(conn, [entity(version=[2], attributes=named("a"))])) == (1, 0, 0, 0)
    assert astuple(apply(conn, [entity(version=[1], attributes=named("z"))])) == (0, 0, 1, 0)
    assert astuple(apply(conn, [entity(version=[3], attributes=named("a"))])) == (0, 0, 0, 1)
    assert astuple(apply(conn, [entity("delete", [4]), entity("tombstone")])) == (0, 1, 0, 1)


def test_partial_updates_merge_in_version_order(conn: psycopg.Connection) -> None:
    apply(conn, [entity(version=[1], attributes={"email": "a@x.io", "name": "Ann", "phone": "1"})])
    batch = [
        entity(version=[3], partial=True, attributes={"phone": "3"}),
        entity(version=[2], partial=True, attributes={"phone": "2", "name": "Old"}),
        entity(version=[4], partial=True, attributes={"name": "Ann B"}),
    ]
    stats = apply(conn, batch)
    assert (stats.upserted, stats.stale) == (2, 1)
    assert row(conn) == (False, [4], {"email": "a@x.io", "name": "Ann B", "phone": "3"})


def test_full_upsert_replaces_attributes(conn: psycopg.Connection) -> None:
    apply(conn, [entity(version=[1], attributes={"email": "a@x.io", "name": "Ann", "phone": "1"})])
    apply(conn, [entity(version=[2], attributes={"email": "a@x.io"})])
    assert row(conn) == (False, [2], {"email": "a@x.io"})


def test_nulled_fields_become_json_null(conn: psycopg.Connection) -> None:
    apply(conn, [entity(version=[1], attributes={"email": "a@x.io", "phone": "1"})])
    apply(conn, [entity(version=[2], partial=True, attributes={}, nulled_fields=["phone", "address"])])
    assert row(conn) == (False, [2], {"email": "a@x.io", "phone": None, "address": None})
    nulls = conn.execute(
        "SELECT jsonb_typeof(attributes->'phone'), attributes ? 'phone' FROM entities WHERE external_id = 'c1'"
    ).fetchone()
    assert nulls == ("null", True)


@pytest.mark.parametrize("partial", [True, False], ids=["partial", "full replace"])
def test_unchanged_fields_keep_their_stored_value(conn: psycopg.Connection, partial: bool) -> None:
    apply(conn, [entity(version=[1], attributes={"email": "a@x.io", "name": "Ann", "notes": "long text"})])
    placeholder = "__debezium_unavailable_value"
    event = entity(
        version=[2],
        partial=partial,
        attributes={"email": "b@x.io", "notes": placeholder},
        unchanged_fields=["notes", "never_seen"],
    )
    apply(conn, [event])
    expected = {"email": "b@x.io", "notes": "long text"} | ({"name": "Ann"} if partial else {})
    assert row(conn) == (False, [2], expected)


def test_upsert_after_delete_starts_from_empty_attributes(conn: psycopg.Connection) -> None:
    apply(conn, [entity(version=[1], attributes={"email": "a@x.io", "name": "Ann"}), entity("delete", [2])])
    assert row(conn) == (True, [2], {})
    apply(conn, [entity(version=[3], partial=True, attributes={"name": "New"})])
    assert row(conn) == (False, [3], {"name": "New"})


def test_keys_include_type_and_source(conn: psycopg.Connection) -> None:
    apply(
        conn,
        [
            entity(attributes={"email": "a@x.io"}),
            entity(source="erp", attributes={"email": "erp@x.io"}),
            entity(entity_type="order", attributes={"customer_id": "c1", "total": 10}),
        ],
    )
    assert conn.execute("SELECT count(*) FROM entities").fetchone() == (3,)


def test_get_entity(conn: psycopg.Connection) -> None:
    apply(conn, [entity(attributes={"email": "a@x.io"}), entity(external_id="gone", attributes={"email": "g@x.io"})])
    apply(conn, [entity("delete", [2], external_id="gone")])
    found = store.get_entity(conn, entity_type="customer", external_id="c1")
    assert found is not None
    assert (found["source"], found["version"], found["attributes"]) == ("crm", [1], {"email": "a@x.io"})
    assert store.get_entity(conn, entity_type="customer", external_id="c1", source="erp") is None
    assert store.get_entity(conn, entity_type="order", external_id="c1") is None
    assert store.get_entity(conn, entity_type="customer", external_id="gone") is None


def test_find_customers_by_email(conn: psycopg.Connection) -> None:
    apply(
        conn,
        [
            entity(external_id="c1", attributes={"email": "Ann@Example.com"}),
            entity(external_id="c2", source="erp", attributes={"email": "ann@example.com"}),
            entity(external_id="c3", attributes={"email": "bob@example.com"}),
            entity(external_id="c4", attributes={"email": "ann@example.com"}),
        ],
    )
    apply(conn, [entity("delete", [2], external_id="c4")])
    found = store.find_customers_by_email(conn, email=" ANN@example.com ")
    assert [(c["source"], c["external_id"]) for c in found] == [("crm", "c1"), ("erp", "c2")]
    assert store.find_customers_by_email(conn, email="nobody@example.com") == []


def test_upsert_without_version_is_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidEntityEventError, match="empty version"):
        store.apply_entities(conn, [entity(version=[])])


def test_large_batch_is_written_in_few_round_trips(conn: psycopg.Connection) -> None:
    events = [entity(external_id=f"c{i}", attributes={"email": f"u{i}@x.io"}) for i in range(1000)]
    assert apply(conn, events).upserted == 1000
    assert conn.execute("SELECT count(*) FROM entities").fetchone() == (1000,)


def at(offset: int, topic: str = "raw.debezium.customers", partition: int = 0) -> SourcePosition:
    return SourcePosition(topic=topic, partition=partition, offset=offset)


@pytest.mark.parametrize("one_batch", [False, True], ids=["one batch per event", "one batch"])
def test_a_redelivered_tombstone_never_deletes_a_row_recreated_after_it(
    conn: psycopg.Connection, one_batch: bool
) -> None:
    stream = [
        entity("upsert", [1], attributes=named("a"), position=at(10)),
        entity("delete", [2], position=at(11)),
        entity("tombstone", position=at(12)),
        entity("upsert", [3], attributes=named("b"), position=at(13)),
    ]
    for replay in (stream, stream):  # the second pass is a redelivery after a crash
        if one_batch:
            apply(conn, replay)
        else:
            for event in replay:
                apply(conn, [event])
    assert row(conn) == (False, [3], {"name": "b"})


def test_a_tombstone_after_the_last_write_deletes_when_deletes_arrive_only_as_tombstones(
    conn: psycopg.Connection,
) -> None:
    apply(conn, [entity("upsert", [5], attributes=named("a"), position=at(20))])
    apply(conn, [entity("tombstone", position=at(21))])
    assert row(conn)[0] is True  # type: ignore[index]


def test_writes_without_a_position_keep_the_last_raw_position(conn: psycopg.Connection) -> None:
    apply(conn, [entity("upsert", [5], attributes=named("a"), position=at(20))])
    apply(conn, [entity("upsert", [6], attributes=named("agent edit"), partial=True)])
    apply(conn, [entity("tombstone", position=at(19))])  # older than the raw write: a redelivery
    assert row(conn) == (False, [6], {"name": "agent edit"})
    apply(conn, [entity("tombstone", position=at(21))])
    assert row(conn)[0] is True  # type: ignore[index]
