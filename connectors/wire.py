"""Vendor wire-format helpers: Kafka Connect envelopes, Avro-as-JSON unions, headers."""

from __future__ import annotations

from typing import Any

from connectors.base import RawMessage

AVRO_BRANCHES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string", "array", "map"})


def unwrap_connect(value: Any) -> Any:
    """The `payload` of a Kafka Connect JsonConverter envelope ({"schema": .., "payload": ..}), else `value`."""
    if isinstance(value, dict) and "payload" in value and set(value) <= {"schema", "payload"}:
        return value["payload"]
    return value


def _is_union_branch(value: dict[str, Any]) -> bool:
    if len(value) != 1:
        return False
    ((name, inner),) = value.items()
    if name in AVRO_BRANCHES:
        return True
    return "." in name and isinstance(inner, dict) and not name.startswith(".")


def unwrap_avro(value: Any) -> Any:
    """Avro-as-JSON with union branches ({"string": "x"}, {"ns.Rec.Value": {...}}) as plain JSON."""
    if isinstance(value, dict):
        if _is_union_branch(value):
            return unwrap_avro(next(iter(value.values())))
        return {key: unwrap_avro(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_avro(item) for item in value]
    return value


def header(message: RawMessage, name: str) -> str | None:
    """The value of header `name`, matched case-insensitively; None when absent."""
    wanted = name.lower()
    for key, value in message.headers.items():
        if key.lower() == wanted:
            return value
    return None


def topic_suffix(topic: str) -> str:
    """The last dot-separated part of a topic name ('raw.debezium.customers' -> 'customers')."""
    return topic.rsplit(".", 1)[-1]


def ref_id(value: Any) -> str | None:
    """An id given either as a scalar or as an expanded object with an `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return None
    return str(value)


def as_object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (for optional nested objects)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """`value` when it is a JSON array, else an empty one (for optional arrays)."""
    return value if isinstance(value, list) else []
