"""A validating Kafka producer (confluent-kafka) for tools, replay, and the webhook gateway."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streamdesk import contracts, telemetry, topics
from streamdesk.exceptions import StreamdeskError

log = logging.getLogger(__name__)


class PublishError(StreamdeskError):
    """A message could not be delivered to the broker."""


def encode_key(key: str | bytes | None) -> bytes | None:
    """Keys travel as UTF-8 bytes."""
    if key is None or isinstance(key, bytes):
        return key
    return key.encode()


def check_size(
    topic: str, *, key: bytes | None, value: bytes | None, headers: Mapping[str, str | bytes] | None
) -> None:
    """Refuse a record larger than its registered topic's `max_message_bytes` (brokers such as Tansu do not)."""
    if topic not in topics.registry():
        return
    size, limit = topics.record_bytes(key=key, value=value, headers=headers), topics.max_message_bytes(topic)
    if size > limit:
        raise PublishError(
            f"a {size}-byte record does not fit topic {topic!r} (max_message_bytes={limit}, schemas/topics.yaml)"
        )


class Publisher:
    """Validates payloads against their topic's contract and delivers them idempotently."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "streamdesk", linger_ms: int = 5):
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": client_id,
                "enable.idempotence": True,
                "linger.ms": linger_ms,
                "batch.num.messages": 10000,
                "message.max.bytes": topics.max_producer_bytes(),
            }
        )
        self.client_id = client_id
        self._errors: list[str] = []
        self.delivered = 0
        self.closed = False

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")
        else:
            self.delivered += 1

    def publish(
        self,
        topic: str,
        value: Mapping[str, Any] | bytes | None,
        *,
        key: str | bytes | None = None,
        headers: Mapping[str, str | bytes] | None = None,
        validate: bool = True,
        trace_context: bool = False,
    ) -> None:
        """Queue one message; JSON objects are validated against the topic's schema first.

        With `trace_context`, the current span's W3C trace context (`traceparent`, `tracestate`) is added
        to `headers`, so the consumer continues the trace; the other headers are kept as given.
        """
        if trace_context:
            headers = {**(headers or {}), **telemetry.inject_headers()}
        if isinstance(value, Mapping):
            if validate:
                contracts.validate(topics.spec(topic).schema, value)
            payload: bytes | None = json.dumps(value, separators=(",", ":"), default=str).encode()
        else:
            payload = value
        check_size(topic, key=encode_key(key), value=payload, headers=headers)
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=payload,
                    key=encode_key(key),
                    headers=list((headers or {}).items()),
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for every queued message; raise PublishError if any was not delivered."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise PublishError(f"{remaining} messages still undelivered after {timeout_s}s; is the broker up?")
        if self._errors:
            errors, self._errors = self._errors, []
            raise PublishError(f"{len(errors)} messages failed, first: {errors[0]}")
        return self.delivered

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush (raising PublishError as `flush` does), then drop what is left and shut the producer down."""
        try:
            self.flush(timeout_s)
        finally:
            self._producer.purge()
            self._producer.close()
            self.closed = True

    def release(self, timeout_s: float = 10.0) -> None:
        """`close` for a component that stops: what is still undelivered after `timeout_s` is logged, not raised."""
        if self.closed:
            return
        try:
            self.close(timeout_s)
        except PublishError as exc:
            log.warning("%s stopped with undelivered messages: %s", self.client_id, exc)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
