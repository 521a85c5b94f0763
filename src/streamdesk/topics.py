"""The topic registry (`schemas/topics.yaml`): names, contracts, layout, and topic creation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from streamdesk.config import Settings, get_settings
from streamdesk.exceptions import ConfigurationError

DOCUMENT = "canonical.document"
ENTITY = "canonical.entity"
TICKET = "canonical.ticket"
STORED_TICKET = "ticket.stored"
DEAD_LETTER = "deadletter"
MODEL = "model"
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
RAW_ENVELOPE_BYTES = 64 * 1024
"""Room a raw topic keeps beyond `ingest.max_body_bytes` for the key, the headers and the record framing."""
RECORD_FRAMING_BYTES = 512
"""A generous bound on what a Kafka record adds to its key, value and headers (lengths, offsets, batch header)."""


@dataclass(frozen=True)
class TopicSpec:
    """One registered topic."""

    name: str
    schema: str
    key: str
    partitions: int
    cleanup_policy: str
    family: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    @property
    def is_raw(self) -> bool:
        return self.family is not None


@lru_cache
def load_registry(path: Path) -> dict[str, TopicSpec]:
    """Read the registry file into specs keyed by topic name."""
    data = yaml.safe_load(path.read_text())
    defaults = data.get("defaults", {})
    specs: dict[str, TopicSpec] = {}
    for entry in data["topics"]:
        spec = TopicSpec(
            name=entry["name"],
            schema=entry["schema"],
            key=entry.get("key", ""),
            partitions=int(entry.get("partitions", defaults.get("partitions", 8))),
            cleanup_policy=entry.get("cleanup_policy", defaults.get("cleanup_policy", "delete")),
            family=entry.get("family"),
            max_message_bytes=int(
                entry.get("max_message_bytes", defaults.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
            ),
        )
        if spec.is_raw and "max_message_bytes" in entry:
            raise ConfigurationError(
                f"raw topic {spec.name!r} in {path} sets max_message_bytes; raw topics take "
                "STREAMDESK_INGEST__MAX_BODY_BYTES plus 64 KiB, so set that instead"
            )
        if spec.name in specs:
            raise ConfigurationError(f"topic {spec.name!r} is registered twice in {path}")
        specs[spec.name] = spec
    return specs


def registry(settings: Settings | None = None) -> dict[str, TopicSpec]:
    """The registered topics for the current settings."""
    settings = settings or get_settings()
    return load_registry(settings.schemas_dir / "topics.yaml")


def spec(name: str) -> TopicSpec:
    """The spec of topic `name`; unknown names are a configuration error."""
    try:
        return registry()[name]
    except KeyError:
        raise ConfigurationError(f"topic {name!r} is not in schemas/topics.yaml; register it there") from None


def raw_topics() -> list[TopicSpec]:
    """Every raw (vendor-payload) topic."""
    return [s for s in registry().values() if s.is_raw]


def max_message_bytes(name: str, settings: Settings | None = None) -> int:
    """The largest record topic `name` carries: `ingest.max_body_bytes` plus an envelope for raw topics, else
    the registry's `max_message_bytes` (producers, topic configs and the ingest checks all use this)."""
    settings = settings or get_settings()
    spec = registry(settings).get(name)
    if spec is None:
        raise ConfigurationError(f"topic {name!r} is not in schemas/topics.yaml; register it there")
    if spec.is_raw:
        return settings.ingest.max_body_bytes + RAW_ENVELOPE_BYTES
    return spec.max_message_bytes


def max_producer_bytes(settings: Settings | None = None) -> int:
    """The largest record any registered topic carries: the producers' request-size limit."""
    settings = settings or get_settings()
    return max(max_message_bytes(name, settings) for name in registry(settings))


def record_bytes(*, key: bytes | None, value: bytes | None, headers: Mapping[str, str | bytes] | None = None) -> int:
    """An upper bound on the size of a record as the broker's message-size limit counts it."""
    size = RECORD_FRAMING_BYTES + len(key or b"") + len(value or b"")
    for name, header in (headers or {}).items():
        size += len(name.encode()) + len(header.encode() if isinstance(header, str) else header) + 8
    return size


def ensure_topics(bootstrap_servers: str, *, replication_factor: int = 1, timeout_s: float = 30) -> list[str]:
    """Create every registered topic that does not exist yet; return the names created."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=replication_factor,
            config={"cleanup.policy": s.cleanup_policy, "max.message.bytes": str(max_message_bytes(s.name))},
        )
        for s in registry().values()
        if s.name not in existing
    ]
    if not wanted:
        return []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
        except Exception as exc:  # KafkaException wraps TOPIC_ALREADY_EXISTS on races
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ConfigurationError(f"could not create topic {name!r}: {exc}") from exc
    return [t.topic for t in wanted]
