"""Declarative JSON mappings (connectors/mappings/<name>.yaml): the file model and field evaluation.

A field spec is a dotted path string ('a.b[0].c'), or an object with exactly one of `path`, `paths`
(a list, giving a list value) or `const`, then optional `transform` (one name or a list, applied in
order), `sep` (for join/split), `map` (value lookup) and `default` (used when the result is None).
Paths starting with `$kafka.` read the message (offset, partition, timestamp_ms, topic), `$header.<name>`
a header, and `$index` the position of the record in a JSON array.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.base import ConnectorError, RawMessage
from connectors.exceptions import MappingError
from connectors.transforms import TRANSFORMS, apply_transform
from connectors.wire import header
from streamdesk.contracts import EntityType

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_INDEX = re.compile(r"\[(\d+)\]")
DOCUMENT_FIELDS = frozenset({"title", "body", "url", "doc_type", "language", "access", "groups"})
TICKET_FIELDS = frozenset(
    {"subject", "body", "status", "priority", "assignee_id", "customer_id", "tags"}
    | {"requester.id", "requester.name", "requester.email"}
)


def _map_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class FieldSpec(BaseModel):
    """How to compute one value from a record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    paths: list[str] | None = None
    const: Any = None
    transform: list[str] = Field(default_factory=list)
    sep: str = " "
    map: dict[str, Any] | None = None
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @field_validator("transform", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("transform")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in TRANSFORMS]
        if unknown:
            raise ValueError(f"unknown transform {unknown[0]!r}; use one of {', '.join(TRANSFORMS)}")
        return value

    @field_validator("map", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {_map_key(key): item for key, item in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [name for name in ("path", "paths", "const") if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, paths, const (got {', '.join(given) or 'none'})")
        return self


class Mapping(BaseModel):
    """One mapping file: which canonical record a source record becomes, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    kind: Literal["document", "entity", "ticket"]
    source: str = Field(min_length=1)
    entity_type: EntityType | None = None
    record: str | None = None
    id: FieldSpec
    version: list[FieldSpec] = Field(min_length=1)
    occurred_at: FieldSpec | None = None
    op: FieldSpec | None = None
    event_type: FieldSpec | None = None
    event_id: FieldSpec | None = None
    tenant: FieldSpec | None = None
    partial: bool = False
    default_access: Literal["public", "internal", "restricted"] = "public"
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    metadata: dict[str, FieldSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fits_kind(self) -> Mapping:
        if self.kind == "entity" and self.entity_type is None:
            raise ValueError("kind 'entity' needs entity_type (customer, order, order_item, invoice, product)")
        if self.kind != "entity" and self.entity_type is not None:
            raise ValueError(f"entity_type applies to kind 'entity' only, not {self.kind!r}")
        allowed = {"document": DOCUMENT_FIELDS, "ticket": TICKET_FIELDS}.get(self.kind)
        if allowed is not None:
            unknown = sorted(set(self.fields) - allowed)
            if unknown:
                raise ValueError(
                    f"fields {unknown} are not {self.kind} fields; use {sorted(allowed)} or put them in metadata"
                )
        if self.kind == "ticket" and self.event_type is None:
            raise ValueError("kind 'ticket' needs event_type (a const or a mapped field)")
        if self.kind != "ticket" and self.event_type is not None:
            raise ValueError("event_type applies to kind 'ticket' only")
        return self


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> Mapping:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from exc
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise MappingError(f"mapping file {path} is invalid at {where}: {first['msg']}") from None
    if mapping.name != path.stem:
        raise MappingError(f"mapping file {path} declares name {mapping.name!r}; rename one to match")
    return mapping


def load_mapping(name: str, *, directory: Path = MAPPINGS_DIR) -> Mapping:
    """The mapping called `name` from `directory` (re-read when the file changes)."""
    if not NAME.match(name):
        raise MappingError(f"mapping name {name!r} is invalid; use lowercase letters, digits, '_' or '-'")
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise MappingError(f"no mapping {name!r} in {directory}; known mappings: {', '.join(known) or 'none'}")
    return _load(path, path.stat().st_mtime_ns)


@dataclass(frozen=True)
class Context:
    """What paths can read: the record, the raw message and the record's position."""

    record: Any
    message: RawMessage
    index: int


def resolve(path: str, ctx: Context) -> Any:
    """The value at dotted `path` ('a.b[0].c', 'a.b.0.c', '$kafka.offset', '$header.x'); None if absent."""
    if path == "$index":
        return ctx.index
    if path.startswith("$kafka."):
        attribute = path.removeprefix("$kafka.")
        if attribute not in {"offset", "partition", "timestamp_ms", "topic"}:
            raise MappingError(f"path {path!r}: use $kafka.offset, .partition, .timestamp_ms or .topic")
        return getattr(ctx.message, attribute)
    if path.startswith("$header."):
        return header(ctx.message, path.removeprefix("$header."))
    value = ctx.record
    for part in _INDEX.sub(r".\1", path).split("."):
        if part == "":
            continue
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def evaluate(spec: FieldSpec, ctx: Context, *, what: str) -> Any:
    """The value `spec` computes for the record in `ctx`."""
    if "const" in spec.model_fields_set:
        value = spec.const
    elif spec.paths is not None:
        value = [resolve(path, ctx) for path in spec.paths]
    else:
        value = resolve(spec.path or "", ctx)
    for name in spec.transform:
        try:
            value = apply_transform(name, value, sep=spec.sep)
        except ConnectorError as exc:
            raise ConnectorError(f"{what}: transform {name!r} failed: {exc}") from None
    if spec.map is not None and value is not None:
        value = spec.map.get(_map_key(value), spec.default if spec.default is not None else value)
    return spec.default if value is None else value
