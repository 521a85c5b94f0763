"""Accept a webhook: verify its signature, record its delivery id once, publish it verbatim, confirm.

The publish happens in a producer span whose W3C trace context travels in the raw message's headers
(continuing a `traceparent` the sender gave), so the ticket's trace follows it through ingest and the agent.

Non-JSON bodies are refused with 400 and nothing is recorded or published: every supported vendor
sends JSON, so anything else is a misconfigured sender that should hear about it at once rather
than through the dead-letter topic. The delivery row and the publish share one transaction, so a
delivery the broker did not confirm is rolled back and the vendor's retry is not taken for a replay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from opentelemetry import trace

from streamdesk import db, telemetry, topics
from streamdesk.config import Settings
from streamdesk.gateway.exceptions import (
    GatewayUnavailableError,
    InvalidPayloadError,
    PayloadTooLargeError,
    ReplayedDeliveryError,
    UnknownSourceError,
)
from streamdesk.gateway.models import SOURCES, Delivery, Source
from streamdesk.gateway.signatures import SignedRequest
from streamdesk.kafka import Publisher, PublishError

log = logging.getLogger(__name__)
MAPPING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_DELIVERY_ID = 256
FLUSH_TIMEOUT_S = 10.0


def get_source(*, name: str) -> Source:
    """The source served at /webhooks/{name}."""
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownSourceError(f"unknown webhook source {name!r}; use one of {', '.join(sorted(SOURCES))}") from None


def raw_topic(*, source: Source) -> str:
    """The one raw topic of the source's family in schemas/topics.yaml."""
    names = [spec.name for spec in topics.raw_topics() if spec.family == source.family]
    if len(names) != 1:
        raise UnknownSourceError(
            f"family {source.family!r} has {len(names)} raw topics in schemas/topics.yaml; register exactly one"
        )
    return names[0]


def check_mapping(*, mapping: str | None) -> str:
    """The mapping name a generic webhook must carry in `?mapping=NAME`."""
    if not mapping or not MAPPING_NAME.fullmatch(mapping):
        raise InvalidPayloadError(
            f"mapping {mapping!r} is missing or malformed; POST /webhooks/generic?mapping=NAME "
            "with NAME of letters, digits, '_', '.', '-' (at most 64)"
        )
    return mapping


def check_size(*, size: int, limit: int) -> None:
    """Refuse bodies larger than `limit` bytes."""
    if size > limit:
        raise PayloadTooLargeError(
            f"body of {size} bytes exceeds the {limit}-byte limit; send smaller events or raise "
            "STREAMDESK_INGEST__MAX_BODY_BYTES"
        )


def verify(*, source: Source, request: SignedRequest, settings: Settings, now: float | None = None) -> str:
    """Check the request's signature with the source's secret; return the signature that matched."""
    secret = getattr(settings.gateway, source.secret_field).get_secret_value()
    return source.verify(request, secret=secret, tolerance_s=settings.gateway.tolerance_s, now=now)


MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects a webhook may have; vendors' payloads stay far below it."""


def _refuse_constant(name: str) -> Any:
    raise InvalidPayloadError(f"body holds {name}, which JSON does not allow; send a number, a string or null")


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(*, body: bytes) -> Any:
    """The body as strict JSON (no NaN or Infinity, at most MAX_JSON_DEPTH deep); InvalidPayloadError says why not."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise InvalidPayloadError(f"body is not UTF-8 text (byte {exc.start}); send JSON") from None
    except json.JSONDecodeError as exc:
        raise InvalidPayloadError(f"body is not valid JSON at char {exc.pos}: {exc.msg}; send JSON") from None
    except RecursionError:
        raise InvalidPayloadError(
            f"body nests arrays or objects too deeply to parse; send at most {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError:  # the only other one json raises: an integer past Python's digit limit
        raise InvalidPayloadError(
            f"body holds an integer of more than {sys.get_int_max_str_digits()} digits; send such numbers as strings"
        ) from None
    depth = json_depth(payload)
    if depth > MAX_JSON_DEPTH:
        raise InvalidPayloadError(f"body nests arrays or objects {depth} levels deep; send at most {MAX_JSON_DEPTH}")
    return payload


def delivery_id(*, source: Source, request: SignedRequest, signature: str) -> str:
    """The vendor's delivery id header when it sends one, else the signature; long ids are hashed."""
    value = request.headers.get(source.delivery_header, "").strip() if source.delivery_header else ""
    value = value or signature
    if len(value) > MAX_DELIVERY_ID:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def _dig(payload: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(payload, list) and len(payload) > step:
            payload = payload[step]
        elif isinstance(step, str) and isinstance(payload, Mapping):
            payload = payload.get(step)
        else:
            return None
    return payload


def record_key(*, source: Source, payload: Any, fallback: str) -> str:
    """The vendor object id at the first of the source's key paths that has one, else `fallback`."""
    for path in source.key_paths:
        value = _dig(payload, path)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return fallback


def remember_delivery(*, conn: psycopg.Connection, source: str, delivery_id: str, received_at: datetime) -> None:
    """Record a delivery id; ReplayedDeliveryError if it was recorded before."""
    cur = conn.execute(
        "INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (source, delivery_id, received_at),
    )
    if cur.rowcount == 0:
        raise ReplayedDeliveryError(
            f"{source} delivery {delivery_id[:80]!r} was accepted before; a replay is not published twice"
        )


def forget_deliveries(*, conn: psycopg.Connection, before: datetime) -> int:
    """Delete delivery records received before `before`; return how many went."""
    return conn.execute("DELETE FROM webhook_deliveries WHERE received_at < %s", (before,)).rowcount


class WebhookPublisher:
    """A Publisher that publishes and flushes one delivery at a time, so a flush confirms its own message."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._publisher: Publisher | None = Publisher(bootstrap_servers, client_id="streamdesk-gateway", linger_ms=0)
        self._lock = threading.Lock()

    def deliver(self, topic: str, value: bytes, *, key: str, headers: Mapping[str, str]) -> None:
        """Publish verbatim bytes and wait for the broker; GatewayUnavailableError if it does not confirm."""
        with self._lock:
            if self._publisher is None:
                raise GatewayUnavailableError("the gateway publisher is closed; the API is shutting down")
            try:
                self._publisher.publish(topic, value, key=key, headers=headers)
                self._publisher.flush(FLUSH_TIMEOUT_S)
            except PublishError as exc:
                raise GatewayUnavailableError(f"the broker did not confirm the webhook: {exc}") from exc

    def close(self) -> None:
        """Flush whatever is still queued and release the producer."""
        with self._lock:
            publisher, self._publisher = self._publisher, None
            if publisher is None:
                return
            try:
                publisher.flush(FLUSH_TIMEOUT_S)
            except PublishError as exc:  # those deliveries were already answered 503 and rolled back
                log.error("gateway publisher closed with unconfirmed messages: %s", exc)


def accept(
    *,
    source_name: str,
    request: SignedRequest,
    settings: Settings,
    publisher: WebhookPublisher,
    mapping: str | None = None,
    now: float | None = None,
) -> Delivery:
    """Verify, deduplicate and publish one webhook; the returned Delivery is on the broker."""
    received_at = datetime.now(UTC)
    source = get_source(name=source_name)
    mapping = check_mapping(mapping=mapping) if source.family == "mapped" else None
    check_size(size=len(request.body), limit=settings.ingest.max_body_bytes)
    signature = verify(source=source, request=request, settings=settings, now=now)
    payload = parse_json(body=request.body)
    delivery = delivery_id(source=source, request=request, signature=signature)
    topic = raw_topic(source=source)
    with telemetry.tracer(__name__).start_as_current_span(
        f"send {topic}",
        context=telemetry.extract_context(request.headers),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "streamdesk.webhook.source": source.name,
        },
    ):
        headers = {
            "source": source.name,
            "delivery-id": delivery,
            "received-at": received_at.isoformat(timespec="milliseconds"),
        }
        headers.update({name: request.headers[name] for name in source.forwarded_headers if name in request.headers})
        if mapping:
            headers["mapping"] = mapping
        accepted = Delivery(
            source=source.name,
            delivery_id=delivery,
            topic=topic,
            key=record_key(source=source, payload=payload, fallback=delivery),
            received_at=received_at,
            headers=telemetry.inject_headers(headers),
        )
        try:
            with db.connect(db.database_url(settings)) as conn, conn.transaction():
                remember_delivery(conn=conn, source=source.name, delivery_id=delivery, received_at=received_at)
                publisher.deliver(accepted.topic, request.body, key=accepted.key, headers=accepted.headers)
        except psycopg.OperationalError as exc:
            raise GatewayUnavailableError(f"the database is unreachable, nothing was accepted: {exc}") from exc
    return accepted
