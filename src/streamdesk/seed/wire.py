"""Raw wire formats the seed sets publish: Debezium PostgreSQL change events and `kb_article` records.

Debezium events are emitted as Kafka Connect's JsonConverter writes them with `schemas.enable=false`:
the value is the bare envelope `{before, after, source, op, ts_ms, ts_us, ts_ns, transaction}` and the
key is `{"id": "<primary key>"}`. Tables are assumed to use `REPLICA IDENTITY FULL`, so updates and
deletes carry the whole `before` row. One `DebeziumLog` keeps one LSN counter, so LSNs strictly increase
over everything it emits (real snapshots share one LSN; ours do not, so every read is a distinct version).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

from streamdesk.seed.exceptions import SeedError

DEBEZIUM_VERSION = "2.7.0.Final"
MAPPED_TOPIC = "raw.mapped"
KB_ARTICLE_MAPPING = "kb_article"
SEED_EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z: the clock every seed set starts from
ENTITY_TYPES = {
    "customers": "customer",
    "orders": "order",
    "order_items": "order_item",
    "products": "product",
    "invoices": "invoice",
}

AccessLevel = Literal["public", "internal", "restricted"]


class KbArticle(TypedDict):
    """The `kb_article` mapping's input: one knowledge article as a source system would send it."""

    id: str
    title: str
    text: str
    url: NotRequired[str]
    access: AccessLevel
    groups: list[str]
    updated_at: str
    tenant: NotRequired[str]


@dataclass(frozen=True)
class RawRecord:
    """One message for a raw topic, exactly as it will go on the wire."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    late: bool = False  # a deliberately re-sent older version; never published as a header


def dumps(payload: Any) -> bytes:
    """Compact JSON bytes, as Kafka Connect's JsonConverter writes them."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def iso_from_ms(ts_ms: int) -> str:
    """ISO-8601 UTC timestamp with milliseconds for an epoch-milliseconds value."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")


def ms_from_iso(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 timestamp (naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def debezium_topic(table: str) -> str:
    """The raw topic a Debezium table is captured to."""
    return f"raw.debezium.{table}"


def debezium_key(primary_key: str) -> bytes:
    """The record key Debezium writes for a single-column primary key `id`."""
    return dumps({"id": str(primary_key)})


@dataclass
class DebeziumLog:
    """Emits Debezium PostgreSQL change events from one server, with one strictly increasing LSN."""

    server: str = "erp"
    database: str = "erp"
    schema: str = "public"
    lsn: int = 24_023_128
    tx_id: int = 555
    ts_ms: int = SEED_EPOCH_MS
    lsn_step: int = 56

    def _event(
        self,
        table: str,
        *,
        op: Literal["r", "c", "u", "d"],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        ts_ms: int | None,
    ) -> RawRecord:
        previous, self.lsn = self.lsn, self.lsn + self.lsn_step
        self.ts_ms = max(self.ts_ms + 1, ts_ms or 0)
        ts = self.ts_ms
        row = after if after is not None else before
        if row is None or "id" not in row:
            raise SeedError(f"a {table} change event needs a row with an 'id' column, got {row!r}; add one")
        envelope = {
            "before": before,
            "after": after,
            "source": {
                "version": DEBEZIUM_VERSION,
                "connector": "postgresql",
                "name": self.server,
                "ts_ms": ts,
                "ts_us": ts * 1000,
                "ts_ns": ts * 1_000_000,
                "snapshot": "true" if op == "r" else "false",
                "db": self.database,
                "sequence": f'["{previous}","{self.lsn}"]',
                "schema": self.schema,
                "table": table,
                "txId": self.tx_id,
                "lsn": self.lsn,
                "xmin": None,
            },
            "op": op,
            "ts_ms": ts,
            "ts_us": ts * 1000,
            "ts_ns": ts * 1_000_000,
            "transaction": None,
        }
        return RawRecord(debezium_topic(table), debezium_key(row["id"]), dumps(envelope))

    def read(self, table: str, row: dict[str, Any]) -> RawRecord:
        """A snapshot read (`op: "r"`); all reads of one snapshot share a transaction id."""
        return self._event(table, op="r", before=None, after=row, ts_ms=None)

    def create(self, table: str, row: dict[str, Any], *, ts_ms: int | None = None) -> RawRecord:
        """An insert (`op: "c"`) in its own transaction."""
        self.tx_id += 1
        return self._event(table, op="c", before=None, after=row, ts_ms=ts_ms)

    def update(
        self, table: str, before: dict[str, Any], after: dict[str, Any], *, ts_ms: int | None = None
    ) -> RawRecord:
        """An update (`op: "u"`) in its own transaction."""
        self.tx_id += 1
        return self._event(table, op="u", before=before, after=after, ts_ms=ts_ms)

    def delete(self, table: str, row: dict[str, Any], *, ts_ms: int | None = None) -> list[RawRecord]:
        """A delete (`op: "d"`, `after: null`) followed by its tombstone (same key, null value)."""
        self.tx_id += 1
        event = self._event(table, op="d", before=row, after=None, ts_ms=ts_ms)
        return [event, RawRecord(event.topic, event.key, None)]


def kb_article_record(article: KbArticle) -> RawRecord:
    """The `raw.mapped` message carrying one knowledge article for the `kb_article` mapping."""
    return RawRecord(MAPPED_TOPIC, article["id"].encode(), dumps(article), {"mapping": KB_ARTICLE_MAPPING})


def kb_delete_record(*, article_id: str, updated_at: str) -> RawRecord:
    """The `raw.mapped` message saying an article was deleted (`deleted: true`)."""
    payload = {"id": article_id, "deleted": True, "updated_at": updated_at}
    return RawRecord(MAPPED_TOPIC, article_id.encode(), dumps(payload), {"mapping": KB_ARTICLE_MAPPING})
