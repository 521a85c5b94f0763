"""Records of any other system, turned into canonical events by a declarative mapping file.

The message header `mapping` names the file (connectors/mappings/<name>.yaml). A JSON array yields one
event per element; a Kafka Connect {schema, payload} envelope is unwrapped first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast, get_args

from connectors.access import make_access
from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.entities import canonical_attributes
from connectors.exceptions import MappingError
from connectors.guard import guarded
from connectors.mapping import MAPPINGS_DIR, Context, FieldSpec, Mapping, evaluate, load_mapping, resolve
from connectors.times import parse_time
from connectors.versions import to_int, version_tag
from connectors.wire import header, unwrap_connect
from streamdesk.contracts import (
    CanonicalEvent,
    DocumentEvent,
    EntityEvent,
    Requester,
    TicketEvent,
    TicketEventType,
    utcnow,
)

MAPPING_HEADER = "mapping"


class MappedConnector(Connector):
    """Applies the mapping named by the message's `mapping` header."""

    family = "mapped"

    def __init__(self, *, directory: Path = MAPPINGS_DIR) -> None:
        super().__init__()
        self.directory = directory

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """One canonical event per record in the message."""
        name = header(message, MAPPING_HEADER)
        if not name:
            raise MappingError(
                f"message on {message.topic!r} has no {MAPPING_HEADER!r} header; set it to a mapping name "
                f"from {self.directory}"
            )
        mapping = load_mapping(name, directory=self.directory)
        value = unwrap_connect(decode_json(message.value))
        if mapping.record:
            value = resolve(mapping.record, Context(value, message, 0))
        records = value if isinstance(value, list) else [value]
        return [
            _event(mapping, Context(unwrap_connect(record), message, index)) for index, record in enumerate(records)
        ]


def _event(mapping: Mapping, ctx: Context) -> CanonicalEvent:
    where = f"mapping {mapping.name!r} record #{ctx.index}"
    if not isinstance(ctx.record, dict):
        raise ConnectorError(f"{where} must be a JSON object, got {type(ctx.record).__name__}")
    external_id = evaluate(mapping.id, ctx, what=f"{where} id")
    if external_id in (None, "") or isinstance(external_id, dict | list):
        raise ConnectorError(f"{where}: id {_spec_text(mapping.id)} is missing or not a scalar ({external_id!r})")
    external_id = str(external_id)
    version = [
        to_int(evaluate(spec, ctx, what=f"{where} version[{i}]"), what=f"{where} version {_spec_text(spec)}")
        for i, spec in enumerate(mapping.version)
    ]
    op = evaluate(mapping.op, ctx, what=f"{where} op") if mapping.op else "upsert"
    if op not in ("upsert", "delete"):
        raise ConnectorError(f"{where}: op evaluated to {op!r}; map it to 'upsert' or 'delete'")
    occurred = _occurred_at(mapping, ctx, where)
    values = {target: evaluate(spec, ctx, what=f"{where} field {target!r}") for target, spec in mapping.fields.items()}
    metadata = {
        target: evaluate(spec, ctx, what=f"{where} metadata {target!r}") for target, spec in mapping.metadata.items()
    }
    common: dict[str, Any] = {
        "event_id": _event_id(mapping, ctx, external_id, version, where),
        "source": mapping.source,
        "version": version,
        "occurred_at": occurred,
    }
    if mapping.tenant is not None:
        common["tenant"] = str(evaluate(mapping.tenant, ctx, what=f"{where} tenant") or "default")
    if mapping.kind == "entity":
        entity_type = cast(Any, mapping.entity_type)
        return EntityEvent(
            **common,
            entity_type=entity_type,
            external_id=external_id,
            op=op,
            partial=mapping.partial,
            attributes=canonical_attributes(entity_type, _nest(values)) if op == "upsert" else {},
        )
    record = _Record(mapping, ctx, where, external_id, op, values, metadata, common)
    return _document(record) if mapping.kind == "document" else _ticket(record)


@dataclass(frozen=True)
class _Record:
    """One record's evaluated parts, on their way into a document or ticket event."""

    mapping: Mapping
    ctx: Context
    where: str
    external_id: str
    op: str
    values: dict[str, Any]
    metadata: dict[str, Any]
    common: dict[str, Any]


def _document(record: _Record) -> DocumentEvent:
    mapping, values, where, op = record.mapping, record.values, record.where, record.op
    groups = values.get("groups") or []
    if isinstance(groups, str):
        groups = [part.strip() for part in groups.split(",")]
    if not isinstance(groups, list):
        raise ConnectorError(f"{where}: groups must be a list or comma-separated string, got {groups!r}")
    level = values.get("access") or ("restricted" if groups else mapping.default_access)
    return DocumentEvent(
        **record.common,
        external_id=record.external_id,
        op=cast(Any, op),
        title=_string(values.get("title"), where, "title"),
        body=_string(values.get("body"), where, "body") if op == "upsert" else "",
        url=_optional_string(values.get("url")),
        doc_type=_string(values.get("doc_type"), where, "doc_type") or "article",
        language=_optional_string(values.get("language")),
        access=make_access(level, groups, what=f"{where}: access level"),
        metadata=record.metadata,
    )


def _ticket(record: _Record) -> TicketEvent:
    where = record.where
    event_type = evaluate(cast(FieldSpec, record.mapping.event_type), record.ctx, what=f"{where} event_type")
    nested = _nest(record.values)
    requester = nested.get("requester")
    tags = nested.get("tags") or []
    if not isinstance(tags, list):
        tags = [tags]
    if event_type not in get_args(TicketEventType):
        raise ConnectorError(
            f"{where}: event_type {event_type!r} is not a ticket event type; map it to one of "
            f"{', '.join(get_args(TicketEventType))}"
        )
    return TicketEvent(
        **record.common,
        ticket_id=record.external_id,
        event_type=event_type,
        subject=_optional_string(nested.get("subject")),
        body=_optional_string(nested.get("body")),
        status=_optional_string(nested.get("status")),
        priority=_optional_string(nested.get("priority")),
        assignee_id=_optional_string(nested.get("assignee_id")),
        requester=Requester(**{k: _optional_string(v) for k, v in requester.items()})
        if isinstance(requester, dict) and any(v is not None for v in requester.values())
        else None,
        customer_id=_optional_string(nested.get("customer_id")),
        tags=[str(tag) for tag in tags],
        metadata=record.metadata,
    )


def _occurred_at(mapping: Mapping, ctx: Context, where: str) -> datetime:
    if mapping.occurred_at is not None:
        value = evaluate(mapping.occurred_at, ctx, what=f"{where} occurred_at")
        if value is not None:
            return parse_time(value, what=f"{where} occurred_at {_spec_text(mapping.occurred_at)}")
    if ctx.message.timestamp_ms:
        return parse_time(ctx.message.timestamp_ms, what="message timestamp")
    return utcnow()


def _event_id(mapping: Mapping, ctx: Context, external_id: str, version: list[int], where: str) -> str:
    if mapping.event_id is not None:
        value = evaluate(mapping.event_id, ctx, what=f"{where} event_id")
        if value not in (None, ""):
            return f"{mapping.source}:{value}"
    return f"{mapping.source}:{mapping.name}:{external_id}:{version_tag(version)}"


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    """{'address.city': x} -> {'address': {'city': x}}."""
    nested: dict[str, Any] = {}
    for target, value in values.items():
        node = nested
        *parents, leaf = target.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def _spec_text(spec: FieldSpec) -> str:
    if spec.paths is not None:
        return f"paths {spec.paths}"
    return f"path {spec.path!r}" if spec.path is not None else f"const {spec.const!r}"


def _string(value: Any, where: str, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise ConnectorError(f"{where}: {name} must be text, got {type(value).__name__}")
    return str(value)


def _optional_string(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
