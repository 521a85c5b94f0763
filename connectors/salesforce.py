"""Salesforce Change Data Capture, PushTopic and platform events.

Wire forms: the Pub/Sub API decoded event ({id, schemaId, replayId, payload}), the Confluent connectors'
JsonConverter records ({schema, payload}) and the Streaming API (CometD) message ({channel, data}).
CRM objects become EntityEvents; platform events and other objects become `salesforce_event` documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.entities import canonical_attributes, canonical_names
from connectors.guard import guarded
from connectors.times import parse_time, time_ms
from connectors.versions import to_int, version_tag
from connectors.wire import as_list, as_object, header, unwrap_connect
from streamdesk.contracts import Access, CanonicalEvent, DocumentEvent, EntityEvent, EntityType

OBJECTS: dict[str, EntityType] = {
    "Account": "customer",
    "Contact": "customer",
    "Lead": "customer",
    "Order": "order",
    "OrderItem": "order_item",
    "Product2": "product",
}
INVOICE_OBJECT = re.compile(r"(^|__)Invoice(__c)?$")
META_FIELDS = frozenset({"ChangeEventHeader", "ReplayId", "_ObjectType", "_EventType", "attributes"})
PUSH_EVENTS = {"created": "CREATE", "updated": "UPDATE", "deleted": "DELETE", "undeleted": "UNDELETE"}
FULL_CHANGES = frozenset({"CREATE", "UNDELETE"})


@dataclass(frozen=True)
class _Change:
    """One record change, whatever wire form carried it."""

    entity: str
    record_ids: list[str]
    change_type: str
    fields: dict[str, Any]
    nulled: list[str]
    diff: list[str]
    version: list[int]
    occurred_at: datetime
    id_base: str
    full: bool


def entity_type_for(object_name: str) -> EntityType | None:
    """The canonical entity type of a Salesforce object, or None when it has none."""
    if object_name in OBJECTS:
        return OBJECTS[object_name]
    return "invoice" if INVOICE_OBJECT.search(object_name) else None


def _envelope(value: Any, message: RawMessage) -> tuple[dict[str, Any], Any, str | None]:
    """(event body, replay id, object name hint) from any supported wire form."""
    if not isinstance(value, dict):
        raise ConnectorError(f"Salesforce event must be a JSON object, got {type(value).__name__}")
    hint = header(message, "salesforce-topic")
    if "channel" in value and isinstance(value.get("data"), dict):
        data = value["data"]
        event = data.get("event") if isinstance(data.get("event"), dict) else {}
        if isinstance(data.get("sobject"), dict):
            body = dict(data["sobject"])
            body.setdefault("_EventType", event.get("type"))
        else:
            body = data.get("payload")
        return _object(body), event.get("replayId"), hint or str(value["channel"])
    if isinstance(value.get("payload"), dict) and ({"replayId", "schemaId", "id"} & value.keys()):
        return value["payload"], value.get("replayId"), hint
    body = _object(unwrap_connect(value))
    return body, body.get("ReplayId"), hint


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ConnectorError(f"Salesforce event payload must be a JSON object, got {type(body).__name__}")
    return body


class SalesforceConnector(Connector):
    """Salesforce events -> EntityEvents for CRM objects, DocumentEvents for everything else."""

    family = "salesforce"

    def __init__(
        self, *, event_access: Access | None = None, source: str | None = None, tenant: str = "default"
    ) -> None:
        super().__init__(source=source, tenant=tenant)
        self.event_access = event_access or Access(level="internal")

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """Canonical events for one Salesforce event; one per record id for multi-record CDC events."""
        body, replay, hint = _envelope(decode_json(message.value), message)
        replay_id = to_int(replay, what="ReplayId") if replay not in (None, "") else None
        if isinstance(body.get("ChangeEventHeader"), dict):
            change = _cdc_change(body, replay_id)
        else:
            object_name = str(
                body.get("_ObjectType")
                or as_object(body.get("attributes")).get("type")
                or header(message, "salesforce-object")
                or (hint or "").rsplit("/", 1)[-1]
            )
            if not object_name:
                raise ConnectorError(
                    "Salesforce event has no ChangeEventHeader and no _ObjectType; cannot tell what it is. "
                    "Send CDC, PushTopic or platform events, or set the 'salesforce-object' header"
                )
            if object_name.endswith("__e"):
                return [self._platform_event(object_name, body, replay_id)]
            if str(body.get("_EventType")) not in PUSH_EVENTS:
                raise ConnectorError(
                    f"Salesforce PushTopic event for {object_name!r} has unknown _EventType "
                    f"{body.get('_EventType')!r}; expected one of {', '.join(PUSH_EVENTS)}"
                )
            change = _push_change(object_name, body, replay_id)
        return [self._record_event(change, record_id) for record_id in change.record_ids]

    def _record_event(self, change: _Change, record_id: str) -> CanonicalEvent:
        event_id = change.id_base if len(change.record_ids) == 1 else f"{change.id_base}:{record_id}"
        entity_type = entity_type_for(change.entity)
        if entity_type is None:
            return self._change_document(change, record_id, event_id)
        full = change.full
        if change.change_type == "DELETE":
            attributes: dict[str, Any] = {}
        elif full:
            attributes = dict(change.fields)
        else:
            attributes = {key: item for key, item in _prune(change.fields).items() if key not in change.diff}
        if attributes:
            attributes = canonical_attributes(entity_type, attributes)
            attributes["salesforce_object"] = change.entity
        return EntityEvent(
            event_id=event_id,
            source=self.source,
            entity_type=entity_type,
            external_id=record_id,
            op="delete" if change.change_type == "DELETE" else "upsert",
            version=change.version,
            occurred_at=change.occurred_at,
            partial=not full and change.change_type != "DELETE",
            attributes=attributes,
            unchanged_fields=list(change.diff) if not full else [],
            nulled_fields=canonical_names(entity_type, change.nulled) if not full else [],
            tenant=self.tenant,
        )

    def _change_document(self, change: _Change, record_id: str, event_id: str) -> DocumentEvent:
        verb = change.change_type.lower()
        fields = change.fields if change.full else _prune(change.fields)
        return DocumentEvent(
            event_id=event_id,
            source=self.source,
            external_id=f"{change.entity}:{record_id}:{version_tag(change.version)}",
            op="upsert",
            version=change.version,
            occurred_at=change.occurred_at,
            title=f"{change.entity} {record_id} {verb}",
            body=_describe(fields),
            doc_type="salesforce_event",
            access=self.event_access,
            tenant=self.tenant,
            metadata={
                "object": change.entity,
                "record_id": record_id,
                "change_type": change.change_type,
                "nulled_fields": change.nulled,
                "fields": fields,
            },
        )

    def _platform_event(self, object_name: str, body: dict[str, Any], replay_id: int | None) -> DocumentEvent:
        fields = {key: item for key, item in body.items() if key not in META_FIELDS}
        created = body.get("CreatedDate")
        occurred = parse_time(created, what=f"{object_name}.CreatedDate") if created is not None else None
        if replay_id is not None:
            version, key = [replay_id], str(replay_id)
        elif body.get("EventUuid"):
            if occurred is None:
                raise ConnectorError(f"platform event {object_name!r} has EventUuid but no CreatedDate")
            version, key = [time_ms(created, what="CreatedDate")], str(body["EventUuid"])
        else:
            raise ConnectorError(
                f"platform event {object_name!r} has neither ReplayId nor EventUuid; cannot de-duplicate it"
            )
        if occurred is None:
            raise ConnectorError(f"platform event {object_name!r} has no CreatedDate")
        return DocumentEvent(
            event_id=f"salesforce:{key}" if replay_id is not None else f"salesforce:{object_name}:{key}",
            source=self.source,
            external_id=f"{object_name}:{key}",
            op="upsert",
            version=version,
            occurred_at=occurred,
            title=object_name,
            body=_describe(fields),
            doc_type="salesforce_event",
            access=self.event_access,
            tenant=self.tenant,
            metadata={"object": object_name, "event_schema": body.get("_EventType"), "fields": fields},
        )


def _cdc_change(body: dict[str, Any], replay_id: int | None) -> _Change:
    head = body["ChangeEventHeader"]
    entity = head.get("entityName")
    change_type = head.get("changeType")
    record_ids = head.get("recordIds")
    if not isinstance(entity, str) or not entity:
        raise ConnectorError("Salesforce ChangeEventHeader.entityName is missing; cannot map the change")
    if not isinstance(change_type, str):
        raise ConnectorError(f"Salesforce ChangeEventHeader.changeType is missing for {entity}")
    if change_type.startswith("GAP_"):
        raise ConnectorError(
            f"Salesforce {change_type} for {entity} {record_ids}: gap events carry no field values; "
            "re-read these records from the Salesforce API to resynchronise"
        )
    if change_type not in {"CREATE", "UPDATE", "DELETE", "UNDELETE"}:
        raise ConnectorError(
            f"unsupported Salesforce changeType {change_type!r} for {entity}; expected CREATE, UPDATE, "
            "DELETE or UNDELETE"
        )
    if not isinstance(record_ids, list) or not record_ids or not all(isinstance(i, str) for i in record_ids):
        raise ConnectorError(f"Salesforce {change_type} for {entity} has no recordIds list of strings")
    commit_ts, commit_number = head.get("commitTimestamp"), head.get("commitNumber")
    sequence = head.get("sequenceNumber") or 0
    if commit_ts is not None and commit_number is not None:
        version = [
            to_int(commit_ts, what="commitTimestamp"),
            to_int(commit_number, what="commitNumber"),
            to_int(sequence, what="sequenceNumber"),
        ]
    elif replay_id is not None:
        version = [replay_id]
    else:
        raise ConnectorError(f"Salesforce {change_type} for {entity} has no commitTimestamp/commitNumber or ReplayId")
    if replay_id is not None:
        id_base = f"salesforce:{replay_id}"
    elif head.get("transactionKey"):
        id_base = f"salesforce:{head['transactionKey']}:{sequence}"
    else:
        id_base = f"salesforce:{entity}:{version_tag(version)}"
    occurred = commit_ts if commit_ts is not None else body.get("LastModifiedDate")
    return _Change(
        entity=entity,
        record_ids=list(dict.fromkeys(record_ids)),
        change_type=change_type,
        fields={key: item for key, item in body.items() if key not in META_FIELDS},
        nulled=[str(name) for name in as_list(head.get("nulledFields"))],
        diff=[str(name) for name in as_list(head.get("diffFields"))],
        version=version,
        occurred_at=parse_time(occurred, what=f"{entity} commitTimestamp"),
        id_base=id_base,
        full=change_type in FULL_CHANGES,
    )


def _push_change(object_name: str, body: dict[str, Any], replay_id: int | None) -> _Change:
    record_id = body.get("Id")
    if not isinstance(record_id, str) or not record_id:
        raise ConnectorError(f"Salesforce PushTopic event for {object_name!r} has no Id")
    change_type = PUSH_EVENTS[cast(str, body["_EventType"])]
    stamp = body.get("LastModifiedDate") or body.get("SystemModstamp") or body.get("CreatedDate")
    if stamp is None:
        raise ConnectorError(
            f"Salesforce PushTopic event for {object_name} {record_id} has no LastModifiedDate/"
            "SystemModstamp; add one to the PushTopic query"
        )
    ms = time_ms(stamp, what=f"{object_name}.LastModifiedDate")
    version = [ms, replay_id] if replay_id is not None else [ms]
    id_base = (
        f"salesforce:{replay_id}"
        if replay_id is not None
        else f"salesforce:{object_name}:{record_id}:{body['_EventType']}:{ms}"
    )
    return _Change(
        entity=object_name,
        record_ids=[record_id],
        change_type=change_type,
        fields={key: item for key, item in body.items() if key not in META_FIELDS},
        nulled=[],
        diff=[],
        version=version,
        occurred_at=parse_time(stamp, what=f"{object_name}.LastModifiedDate"),
        id_base=id_base,
        full=change_type != "DELETE",
    )


def _prune(value: dict[str, Any]) -> dict[str, Any]:
    """Drop nulls (CDC 'unchanged'), recursing into compound fields such as addresses."""
    pruned: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = _prune(item)
            if not item:
                continue
        if item is not None:
            pruned[key] = item
    return pruned


def _describe(fields: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {item}" for key, item in fields.items() if item not in (None, "", [], {}))
