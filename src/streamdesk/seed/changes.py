"""A deterministic change stream over ERP rows and knowledge articles, with the final state it must leave.

For the crash test and the ingest benchmark: creates, several updates per key, deletes (Debezium `d`
then a tombstone; `kb_article` `deleted: true`), re-creates after a delete, text-changing and
text-keeping article updates, and optionally late events (an older version re-sent after a newer one)
that must change nothing. Versions only increase per key in publish order: one LSN counter for the
Debezium tables, strictly increasing `updated_at` for articles. Late events are only re-sent for keys that
are alive when re-sent, so their expected effect is nothing under any delete semantics.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.synthetic import SyntheticRows
from streamdesk.seed.wire import (
    ENTITY_TYPES,
    KB_ARTICLE_MAPPING,
    MAPPED_TOPIC,
    SEED_EPOCH_MS,
    DebeziumLog,
    RawRecord,
    iso_from_ms,
    kb_article_record,
    kb_delete_record,
    ms_from_iso,
)

KB_ARTICLE = KB_ARTICLE_MAPPING  # articles are a pseudo-table named after their mapping
ENTITY_TABLES = ("customers", "orders", "order_items", "products")
SUPPORTED_TABLES = (*ENTITY_TABLES, KB_ARTICLE)
DEFAULT_TABLES = ("customers", "orders", "products", KB_ARTICLE)
CHANGES_START_MS = SEED_EPOCH_MS + 30 * 86_400_000  # a month after the seed snapshot
CHANGES_LSN_START = 1_000_000_000  # far above any seed snapshot's LSNs

EntityKey = tuple[str, str]
ExpectedEntities = dict[EntityKey, dict[str, Any] | None]
ExpectedDocuments = dict[str, dict[str, str] | None]


@dataclass(frozen=True)
class ChangeStream:
    """Raw messages in publish order, and the entity and document state they must leave behind."""

    seed: int
    messages: list[RawRecord]
    expected_entities: ExpectedEntities
    expected_documents: ExpectedDocuments

    def counts(self) -> dict[str, int]:
        """Messages per topic."""
        return dict(Counter(message.topic for message in self.messages))

    @property
    def late(self) -> int:
        """How many messages are deliberately late re-sends."""
        return sum(message.late for message in self.messages)


class _KeyPool:
    """Keys in a deterministic order with O(1) add, remove and random choice."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str) -> None:
        self.index[key] = len(self.keys)
        self.keys.append(key)

    def remove(self, key: str) -> None:
        position, last = self.index.pop(key), self.keys.pop()
        if last != key:
            self.keys[position] = last
            self.index[last] = position

    def choice(self, rng: random.Random) -> str:
        return rng.choice(self.keys)


class _Writer:
    """The generator's state: live and deleted keys per table, the clock, and messages so far."""

    def __init__(
        self,
        *,
        seed: int,
        tables: Sequence[str],
        keys: int,
        id_prefix: str,
        lsn_start: int,
        start_ms: int,
        doc_words: int,
    ) -> None:
        self.rng = random.Random(seed)
        self.tables = tuple(tables)
        self.keys_per_table = max(1, math.ceil(keys / len(self.tables)))
        self.id_prefix = id_prefix
        self.synth = SyntheticRows(self.rng, doc_words=doc_words, reference=self._reference)
        self.log = DebeziumLog(lsn=lsn_start, ts_ms=start_ms, tx_id=10_000)
        self.clock = start_ms
        self.rows: dict[str, dict[str, dict[str, Any] | None]] = {t: {} for t in self.tables}
        self.live = {t: _KeyPool() for t in self.tables}
        self.dead = {t: _KeyPool() for t in self.tables}
        self.upserts: dict[tuple[str, str], list[int]] = {}
        self.messages: list[RawRecord] = []
        self.main = 0

    def step(self, budget: int) -> None:
        """Emit one change of a random kind on a random table, within `budget` messages."""
        table = self.rng.choice(self.tables)
        live, dead = self.live[table], self.dead[table]
        roll = self.rng.random()
        self.clock += 1000
        if not live or (len(live) < self.keys_per_table and roll < 0.3):
            if dead and self.rng.random() < 0.3:
                self._upsert(table, dead.choice(self.rng), revive=True)
            else:
                self._upsert(table, f"{self.id_prefix}-{table}-{len(live) + len(dead) + 1:06d}", revive=False)
        else:
            roll = self.rng.random()
            if dead and roll < 0.04:
                self._upsert(table, dead.choice(self.rng), revive=True)
            elif roll < 0.12 and (table == KB_ARTICLE or budget >= 2):
                self._delete(table, live.choice(self.rng))
            else:
                self._update(table, live.choice(self.rng))

    def _emit(self, table: str, key: str, records: list[RawRecord], *, upsert: bool) -> None:
        if upsert:
            self.upserts.setdefault((table, key), []).append(len(self.messages))
        self.messages.extend(records)
        self.main += len(records)

    def _upsert(self, table: str, key: str, *, revive: bool) -> None:
        row = self.synth.new_row(table, key, updated_at=iso_from_ms(self.clock))
        if revive:
            self.dead[table].remove(key)
        self.live[table].add(key)
        self.rows[table][key] = row
        record = (
            kb_article_record(row)  # type: ignore[arg-type]
            if table == KB_ARTICLE
            else self.log.create(table, row, ts_ms=self.clock)
        )
        self._emit(table, key, [record], upsert=True)

    def _update(self, table: str, key: str) -> None:
        before = self.rows[table][key]
        assert before is not None
        after = self.synth.changed_row(table, before, updated_at=iso_from_ms(self.clock))
        self.rows[table][key] = after
        record = (
            kb_article_record(after)  # type: ignore[arg-type]
            if table == KB_ARTICLE
            else self.log.update(table, before, after, ts_ms=self.clock)
        )
        self._emit(table, key, [record], upsert=True)

    def _delete(self, table: str, key: str) -> None:
        row = self.rows[table][key]
        assert row is not None
        self.live[table].remove(key)
        self.dead[table].add(key)
        self.rows[table][key] = None
        records = (
            [kb_delete_record(article_id=key, updated_at=iso_from_ms(self.clock))]
            if table == KB_ARTICLE
            else self.log.delete(table, row, ts_ms=self.clock)
        )
        self._emit(table, key, records, upsert=False)

    def late(self) -> bool:
        """Re-send an older version of a live key that has a newer one; False when no key qualifies."""
        candidates: list[tuple[str, str]] = []
        for _ in range(20):  # a few random probes first; a full scan only when they all miss
            table = self.rng.choice(self.tables)
            if self.live[table]:
                key = self.live[table].choice(self.rng)
                if len(self.upserts[(table, key)]) >= 2:
                    candidates = [(table, key)]
                    break
        else:
            candidates = [
                (table, key)
                for (table, key), indices in self.upserts.items()
                if len(indices) >= 2 and self.rows[table][key] is not None
            ]
        if not candidates:
            return False
        table, key = self.rng.choice(candidates)
        old = self.messages[self.rng.choice(self.upserts[(table, key)][:-1])]
        self.messages.append(RawRecord(old.topic, old.key, old.value, dict(old.headers), late=True))
        return True

    def _reference(self, table: str) -> str:
        """A live key of `table` to point at, or its first key when the stream does not include it."""
        pool = self.live.get(table)
        return pool.choice(self.rng) if pool else f"{self.id_prefix}-{table}-000001"

    def expected(self) -> tuple[ExpectedEntities, ExpectedDocuments]:
        """The final state the generator itself tracked."""
        entities: ExpectedEntities = {}
        documents: ExpectedDocuments = {}
        for table, rows in self.rows.items():
            for key, row in rows.items():
                if table == KB_ARTICLE:
                    documents[key] = None if row is None else _document_state(row)
                else:
                    entities[(ENTITY_TYPES[table], key)] = row
        return entities, documents


def _document_state(article: dict[str, Any]) -> dict[str, str]:
    return {"title": article["title"], "text": article["text"], "access": article["access"]}


def generate_changes(
    *,
    events: int,
    seed: int,
    tables: Sequence[str] = DEFAULT_TABLES,
    late_events: int = 0,
    keys: int | None = None,
    id_prefix: str = "chg",
    lsn_start: int = CHANGES_LSN_START,
    start_ms: int = CHANGES_START_MS,
    doc_words: int = 120,
) -> ChangeStream:
    """`events` messages (tombstones included) plus `late_events` late re-sends, with the expected state.

    `keys` is the number of distinct keys to aim for over all tables (default `events // 10`, so each
    key sees several updates); ids are `<id_prefix>-<table>-<n>` and never collide with the seed sets.
    """
    unknown = sorted(set(tables) - set(SUPPORTED_TABLES))
    if unknown or not tables:
        raise SeedError(f"tables={list(tables)!r}: unknown {unknown}; choose from {list(SUPPORTED_TABLES)}")
    if events < 1 or late_events < 0:
        raise SeedError(f"events={events}, late_events={late_events}: need events >= 1 and late_events >= 0")
    writer = _Writer(
        seed=seed,
        tables=tables,
        keys=keys if keys is not None else max(len(tables), events // 10),
        id_prefix=id_prefix,
        lsn_start=lsn_start,
        start_ms=start_ms,
        doc_words=doc_words,
    )
    late_at = sorted(writer.rng.randrange(events) for _ in range(late_events))
    pending = 0
    while writer.main < events:
        while late_at and late_at[0] <= writer.main:
            late_at.pop(0)
            pending += 1
        while pending and writer.late():
            pending -= 1
        writer.step(events - writer.main)
    while pending and writer.late():
        pending -= 1
    if pending:
        raise SeedError(
            f"late_events={late_events} needs keys updated at least twice; raise events (now {events}) or lower keys"
        )
    entities, documents = writer.expected()
    return ChangeStream(seed, writer.messages, entities, documents)


def expected_state(messages: Iterable[RawRecord]) -> tuple[ExpectedEntities, ExpectedDocuments]:
    """Fold raw messages into the final state: highest version wins, deletes and tombstones delete."""
    entities: ExpectedEntities = {}
    documents: ExpectedDocuments = {}
    versions: dict[tuple[str, str], int] = {}
    for message in messages:
        if message.topic.startswith("raw.debezium."):
            table = message.topic.removeprefix("raw.debezium.")
            entity_key = (ENTITY_TYPES[table], str(json.loads(message.key or b"{}")["id"]))
            if message.value is None:
                if entity_key in entities:
                    entities[entity_key] = None
                continue
            envelope = json.loads(message.value)
            version = int(envelope["source"]["lsn"])
            if version <= versions.get(("entity", repr(entity_key)), -1):
                continue
            versions[("entity", repr(entity_key))] = version
            entities[entity_key] = None if envelope["op"] == "d" else envelope["after"]
        elif message.topic == MAPPED_TOPIC and message.headers.get("mapping") == KB_ARTICLE_MAPPING:
            body = json.loads(message.value or b"{}")
            version = ms_from_iso(body["updated_at"])
            if version <= versions.get(("document", body["id"]), -1):
                continue
            versions[("document", body["id"])] = version
            documents[body["id"]] = None if body.get("deleted") else _document_state(body)
        else:
            raise SeedError(f"message on {message.topic!r} is neither Debezium nor kb_article; cannot fold it")
    return entities, documents
