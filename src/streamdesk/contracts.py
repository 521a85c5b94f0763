"""The code side of `schemas/`: canonical event records and JSON Schema validation per topic.

Connectors build these records; stream processors read them. `tests/test_contracts.py` keeps the
records and the JSON Schemas in step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import jsonschema
import referencing
from pydantic import BaseModel, ConfigDict, Field, model_validator
from referencing.jsonschema import DRAFT202012

from streamdesk.config import get_settings
from streamdesk.exceptions import ContractError

Op = Literal["upsert", "delete", "tombstone"]
EntityType = Literal["customer", "order", "order_item", "invoice", "product"]
TicketEventType = Literal[
    "created", "comment_added", "status_changed", "priority_changed", "assignment_changed", "updated"
]
Stage = Literal["raw", "canonical", "document", "entity", "ticket", "delivery"]


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class Record(BaseModel):
    """Base of every canonical record: strict fields, JSON-friendly dumps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object its topic carries."""
        return self.model_dump(mode="json", exclude_none=False)


class DataclassRecord:
    """Base of a dataclass result (a report, a decision, an outcome) whose `to_json` is its fields."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The fields as one JSON object."""
        return asdict(self)


class SourcePosition(Record):
    """Where the raw message behind a canonical event sits in Kafka."""

    topic: str
    partition: int
    offset: int


def tombstone_applies(*, stored: SourcePosition | None, tombstone: SourcePosition | None) -> bool:
    """Whether a versionless tombstone deletes a live row last written from the raw message at `stored`.

    A tombstone carries no version, so a redelivered old tombstone must not delete a row re-created
    after it: it applies only when it comes later in the same partition than the raw message that last
    wrote the row, or when it carries no position at all.
    """
    if tombstone is None:
        return True
    if stored is None:
        return False
    return (stored.topic, stored.partition) == (
        tombstone.topic,
        tombstone.partition,
    ) and stored.offset < tombstone.offset


class SourceEvent(Record):
    """What every event from a source system carries first: the schema version, its id and the source."""

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1)
    source: str = Field(min_length=1)


class Access(Record):
    """Who may read a document: everyone, any employee, or members of named groups."""

    level: Literal["public", "internal", "restricted"] = "internal"
    groups: list[str] = Field(default_factory=list)


class DocumentEvent(SourceEvent):
    """A knowledge document changed (upsert) or disappeared (delete, tombstone)."""

    external_id: str = Field(min_length=1)
    op: Op
    version: list[int]
    occurred_at: datetime
    title: str = ""
    body: str = ""
    url: str | None = None
    doc_type: str = "article"
    language: str | None = None
    tenant: str = "default"
    access: Access = Field(default_factory=Access)
    metadata: dict[str, Any] = Field(default_factory=dict)
    position: SourcePosition | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.external_id}"


class EntityEvent(SourceEvent):
    """A business record (customer, order, order item, invoice, product) changed or disappeared."""

    entity_type: EntityType
    external_id: str = Field(min_length=1)
    op: Op
    version: list[int]
    occurred_at: datetime
    partial: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    unchanged_fields: list[str] = Field(default_factory=list)
    nulled_fields: list[str] = Field(default_factory=list)
    tenant: str = "default"
    position: SourcePosition | None = None

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.source}:{self.external_id}"


@dataclass
class FoldStats:
    """What one batch fold of versioned events did; the four counts add up to the events given."""

    upserted: int = 0
    deleted: int = 0
    stale: int = 0
    unchanged: int = 0


VersionedEvent = TypeVar("VersionedEvent", DocumentEvent, EntityEvent)
FoldKey = TypeVar("FoldKey", bound=Hashable)


def events_by_key(
    events: Sequence[VersionedEvent],
    *,
    key: Callable[[VersionedEvent], FoldKey],
    invalid: Callable[[str], Exception],
) -> dict[FoldKey, list[VersionedEvent]]:
    """`events` grouped by `key` in arrival order; `invalid` (a message) is raised for a versionless non-tombstone."""
    for event in events:
        if event.op != "tombstone" and not event.version:
            noun = "document" if isinstance(event, DocumentEvent) else "entity"
            raise invalid(
                f"{noun} event {event.event_id!r} ({event.op} of {event.key}) has an empty version; "
                "only op 'tombstone' may omit it: fix the connector that produced it"
            )
    grouped: dict[FoldKey, list[VersionedEvent]] = {}
    for event in events:
        grouped.setdefault(key(event), []).append(event)
    return grouped


class Requester(Record):
    """The person who raised a ticket, as the source system knows them."""

    id: str | None = None
    name: str | None = None
    email: str | None = None


class TicketEvent(SourceEvent):
    """Something happened to a support ticket."""

    ticket_id: str = Field(min_length=1)
    event_type: TicketEventType
    version: list[int]
    occurred_at: datetime
    subject: str | None = None
    body: str | None = None
    status: str | None = None
    priority: str | None = None
    assignee_id: str | None = None
    requester: Requester | None = None
    customer_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    tenant: str = "default"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _cap_text(cls, data: Any) -> Any:
        """Cut a subject or body longer than `ingest.ticket_text_max_chars`, recording it in `metadata.text_cut`.

        A cut rather than a dead letter: the ticket still reaches the desk and the agent (which reads a token
        budget of it anyway), and the source system keeps the whole text.
        """
        if not isinstance(data, dict):
            return data
        limit = get_settings().ingest.ticket_text_max_chars
        long = {
            name: text for name in ("subject", "body") if isinstance(text := data.get(name), str) and len(text) > limit
        }
        if not long:
            return data
        metadata = dict(data.get("metadata") or {})
        cuts = dict(metadata.get("text_cut") or {})
        for name, text in long.items():
            cuts[name] = {"original_chars": len(text), "kept_chars": limit}
        return {
            **data,
            **{name: text[:limit] for name, text in long.items()},
            "metadata": {**metadata, "text_cut": cuts},
        }

    @property
    def key(self) -> str:
        return f"{self.source}:{self.ticket_id}"


class DeadLetter(Record):
    """A message that could not be processed, with the reason and its original bytes."""

    schema_version: Literal[1] = 1
    topic: str
    partition: int
    offset: int
    key_b64: str | None = None
    value_b64: str | None = None
    headers: dict[str, str | None] = Field(default_factory=dict)
    reason: str = Field(min_length=1)
    error_type: str
    stage: Stage
    occurred_at: datetime = Field(default_factory=utcnow)
    value_bytes: int | None = None
    value_sha256: str | None = None
    dead_letter_id: int | None = None
    payload: Literal["inline", "table"] = "inline"


class TicketState(Record):
    """A ticket as the ticket store holds it: the newest value of each field over its events."""

    version: list[int]
    subject: str | None = None
    status: str | None = None
    priority: str | None = None
    assignee_id: str | None = None
    requester: Requester | None = None
    customer_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    tenant: str = "default"


class StoredTicket(Record):
    """A ticket event the store has committed, with the ticket as stored in that transaction (`ticket.stored`)."""

    schema_version: Literal[1] = 1
    event: TicketEvent
    ticket: TicketState

    @property
    def key(self) -> str:
        return self.event.key


CanonicalEvent = DocumentEvent | EntityEvent | TicketEvent
SCHEMA_BASE_URI = "https://streamdesk.dev/schemas/"
"""Where the schemas' `$id`s live; a `$ref` to another schema file resolves to that file in `schemas/`."""
REPLY_STAMP_PREFIX = "streamdesk-reply:"
"""Each comment streamdesk posts ends with `[streamdesk-reply:<reply id>]`: delivery finds it, the agent skips it."""


@lru_cache
def _load_schema(schemas_dir: Path, name: str) -> dict[str, Any]:
    path = schemas_dir / name
    if not path.is_file():
        raise ContractError(f"schema {name!r} not found in {schemas_dir}")
    schema: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _schema_resource(uri: str) -> referencing.Resource[Any]:
    """The schema file a `$ref` names, read from `schemas/` (never fetched)."""
    if not uri.startswith(SCHEMA_BASE_URI):
        raise ContractError(f"schema reference {uri!r} is outside {SCHEMA_BASE_URI}; refer to a file in schemas/")
    schema = _load_schema(get_settings().schemas_dir, uri.removeprefix(SCHEMA_BASE_URI))
    return referencing.Resource.from_contents(schema, default_specification=DRAFT202012)


@lru_cache
def validator_for(name: str) -> jsonschema.Draft202012Validator:
    """A compiled validator for the schema file `name` (relative to `schemas/`)."""
    schema = _load_schema(get_settings().schemas_dir, name)
    return jsonschema.Draft202012Validator(
        schema,
        format_checker=jsonschema.FormatChecker(),
        registry=referencing.Registry(retrieve=_schema_resource),  # type: ignore[call-arg]
    )


def validate(name: str, payload: Any) -> None:
    """Raise ContractError naming the first violation of schema `name`, if any."""
    error = jsonschema.exceptions.best_match(validator_for(name).iter_errors(payload))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ContractError(f"payload violates {name} at {where}: {error.message}")
