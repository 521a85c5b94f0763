"""Debezium change events for ERP tables (customers, orders, order_items, invoices, products).

Accepted values: the change-event envelope with or without the Kafka Connect schema wrapper, Avro-as-JSON
unions, rows flattened by ExtractNewRecordState, and tombstones (null value). Truncate and transactional
message records are acknowledged no-ops: they yield no events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import Connector, ConnectorError, MalformedJson, RawMessage, decode_json
from connectors.entities import canonical_attributes
from connectors.guard import guarded
from connectors.times import from_epoch_ms
from connectors.versions import to_int, version_tag
from connectors.wire import topic_suffix, unwrap_avro, unwrap_connect
from streamdesk.contracts import CanonicalEvent, EntityEvent, EntityType, utcnow

TABLES: dict[str, EntityType] = {
    "customers": "customer",
    "orders": "order",
    "order_items": "order_item",
    "invoices": "invoice",
    "products": "product",
}
UNAVAILABLE = "__debezium_unavailable_value"
ROW_OPS = frozenset({"c", "r", "u"})
NO_OP_OPS = frozenset({"t", "m"})
_BINLOG_NUMBER = re.compile(r"([0-9]+)$")


class DebeziumConnector(Connector):
    """Debezium change events -> EntityEvents; the table decides the entity type."""

    family = "debezium"

    def __init__(
        self, *, tables: Mapping[str, EntityType] | None = None, source: str | None = None, tenant: str = "default"
    ) -> None:
        super().__init__(source=source, tenant=tenant)
        self.tables: dict[str, EntityType] = {**TABLES, **(tables or {})}

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """EntityEvents for one Debezium record; [] for truncate and logical-decoding messages."""
        value = unwrap_avro(unwrap_connect(decode_json(message.value)))
        if value is None:
            return [self._tombstone(message)]
        if not isinstance(value, dict):
            raise ConnectorError(
                f"Debezium value must be a JSON object (change event or row), got {type(value).__name__}"
            )
        if _is_change_event(value):
            return self._change(message, value)
        return [self._flat_row(message, value)]

    def _table(self, message: RawMessage, named: Any) -> tuple[str, EntityType]:
        """The table the record names (`source.table`, `__table`), else the one the topic is named after."""
        table = str(named) if isinstance(named, str) and named else topic_suffix(message.topic)
        if table not in self.tables:
            raise ConnectorError(
                f"unknown Debezium table {table!r} (topic {message.topic!r}); known tables: "
                f"{', '.join(sorted(self.tables))}. Route it to raw.debezium.<table> or pass tables= to the connector"
            )
        return table, self.tables[table]

    def _id(self, message: RawMessage, table: str, entity_type: EntityType, row: Any) -> str:
        key = _decoded_key(message.key)
        if isinstance(key, dict) and key:
            parts = [str(part) for part in key.values() if part is not None]
            if parts:
                return ":".join(parts)
        elif key is not None and not isinstance(key, dict | list) and str(key):
            return str(key)
        if isinstance(row, dict):
            for field in ("id", f"{entity_type}_id", f"{table.rstrip('s')}_id", "ID", "Id", "uuid"):
                if row.get(field) not in (None, ""):
                    return str(row[field])
        raise ConnectorError(
            f"Debezium record for table {table!r} has no id: the key is empty and the row has no "
            f"'id' or '{entity_type}_id' column; configure the message key to carry the primary key"
        )

    def _tombstone(self, message: RawMessage) -> EntityEvent:
        table, entity_type = self._table(message, None)
        if message.key is None:
            raise ConnectorError(
                f"Debezium tombstone on {message.topic!r} (offset {message.offset}) has no key; cannot tell "
                "which row it deletes"
            )
        external_id = self._id(message, table, entity_type, None)
        return EntityEvent(
            event_id=f"debezium:{table}:{external_id}:tombstone@{message.partition}:{message.offset}",
            source=self.source,
            entity_type=entity_type,
            external_id=external_id,
            op="tombstone",
            version=[],
            occurred_at=_kafka_time(message),
            tenant=self.tenant,
        )

    def _change(self, message: RawMessage, value: dict[str, Any]) -> list[CanonicalEvent]:
        op = value.get("op")
        if not isinstance(op, str):
            raise ConnectorError(f"Debezium op must be a string such as 'c', got {op!r}")
        if op in NO_OP_OPS:
            return []
        if op not in ROW_OPS and op != "d":
            raise ConnectorError(f"unknown Debezium op {op!r}; expected one of c, r, u, d, t, m")
        source: dict[str, Any] = value["source"] if isinstance(value.get("source"), dict) else {}
        table, entity_type = self._table(message, source.get("table"))
        row = value.get("after") if op in ROW_OPS else value.get("before")
        if op in ROW_OPS and not isinstance(row, dict):
            raise ConnectorError(f"Debezium op {op!r} for table {table!r} has no 'after' row object")
        external_id = self._id(message, table, entity_type, row)
        version = change_version(source, value, message)
        attributes, unchanged = _split_unavailable(row) if isinstance(row, dict) and op in ROW_OPS else ({}, [])
        return [
            EntityEvent(
                event_id=f"debezium:{table}:{external_id}:{op}:{version_tag(version)}",
                source=self.source,
                entity_type=entity_type,
                external_id=external_id,
                op="upsert" if op in ROW_OPS else "delete",
                version=version,
                occurred_at=_change_time(source, value, message),
                partial=False,
                attributes=canonical_attributes(entity_type, attributes) if attributes else {},
                unchanged_fields=unchanged,
                tenant=self.tenant,
            )
        ]

    def _flat_row(self, message: RawMessage, row: dict[str, Any]) -> EntityEvent:
        if not row:
            raise ConnectorError("Debezium value is an empty object: neither a change event nor a row")
        table, entity_type = self._table(message, row.get("__table"))
        external_id = self._id(message, table, entity_type, row)
        deleted = str(row.get("__deleted", "")).lower() == "true" or row.get("__op") == "d"
        version = _flat_version(row, message)
        columns = {key: item for key, item in row.items() if not key.startswith("__")}
        attributes, unchanged = ({}, []) if deleted else _split_unavailable(columns)
        occurred = row.get("__source_ts_ms") or row.get("__ts_ms")
        return EntityEvent(
            event_id=f"debezium:{table}:{external_id}:{'d' if deleted else 'row'}:{version_tag(version)}",
            source=self.source,
            entity_type=entity_type,
            external_id=external_id,
            op="delete" if deleted else "upsert",
            version=version,
            occurred_at=from_epoch_ms(to_int(occurred, what="__source_ts_ms")) if occurred else _kafka_time(message),
            partial=False,
            attributes=canonical_attributes(entity_type, attributes) if attributes else {},
            unchanged_fields=unchanged,
            tenant=self.tenant,
        )


def _decoded_key(key: bytes | None) -> Any:
    """The record key as JSON, or as plain text when a StringConverter wrote it (JSON that is unusable raises)."""
    if key is None:
        return None
    try:
        return unwrap_avro(unwrap_connect(decode_json(key, what="key")))
    except MalformedJson:
        return key.decode("utf-8", errors="replace").strip() or None


def _is_change_event(value: dict[str, Any]) -> bool:
    return "op" in value and bool({"source", "before", "after"} & value.keys())


def _split_unavailable(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    attributes = {key: item for key, item in row.items() if item != UNAVAILABLE}
    return attributes, [key for key, item in row.items() if item == UNAVAILABLE]


def _source_ts_ms(source: dict[str, Any], value: dict[str, Any]) -> int | None:
    for candidate, scale in (
        (source.get("ts_ms"), 1),
        (value.get("ts_ms"), 1),
        (source.get("ts_usec"), 1 / 1000),
        (source.get("ts_sec"), 1000),
    ):
        if candidate:
            return int(to_int(candidate, what="Debezium ts") * scale)
    return None


def change_version(source: dict[str, Any], value: dict[str, Any], message: RawMessage) -> list[int]:
    """Ordering key: postgres [lsn, txId], mysql [binlog file, pos, row], else [ts_ms]."""
    connector = str(source.get("connector") or "")
    if connector == "postgresql":
        tx = to_int(source.get("txId") or 0, what="source.txId")
        if source.get("lsn") is not None:
            return [to_int(source["lsn"], what="source.lsn"), tx]
        return [_source_ts_ms(source, value) or message.offset, tx]
    if connector == "mysql" and source.get("file") and source.get("pos") is not None:
        match = _BINLOG_NUMBER.search(str(source["file"]))
        if not match:
            raise ConnectorError(f"MySQL binlog file name {source['file']!r} does not end in a number")
        return [
            to_int(match.group(1), what="MySQL binlog file number"),
            to_int(source["pos"], what="source.pos"),
            to_int(source.get("row") or 0, what="source.row"),
        ]
    ts = _source_ts_ms(source, value)
    if ts is None:
        return [message.timestamp_ms or 0, message.offset]
    return [ts]


def _flat_version(row: dict[str, Any], message: RawMessage) -> list[int]:
    if row.get("__lsn") is not None:
        return [to_int(row["__lsn"], what="__lsn"), to_int(row.get("__txId") or 0, what="__txId")]
    ts = row.get("__source_ts_ms") or row.get("__ts_ms")
    if ts is not None:
        return [to_int(ts, what="__source_ts_ms")]
    return [message.timestamp_ms or 0, message.offset]


def _change_time(source: dict[str, Any], value: dict[str, Any], message: RawMessage) -> datetime:
    ts = _source_ts_ms(source, value)
    return from_epoch_ms(ts) if ts else _kafka_time(message)


def _kafka_time(message: RawMessage) -> datetime:
    return from_epoch_ms(message.timestamp_ms) if message.timestamp_ms else utcnow()
