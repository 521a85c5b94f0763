"""Accept a webhook: verify its signature, record it once under a key derived from what was signed, confirm.

The accepted delivery (body verbatim, headers, topic, key) is stored in `webhook_deliveries` in the
same transaction as its replay key, and 202 follows the commit; the relay (`gateway/relay.py`)
publishes it to the raw topic and re-publishes it until ingest has made it durable (`gateway/intake.py`),
so an acknowledged webhook survives a stop or a crash of the broker. The replay key is a digest of the
signature that matched, which covers the body and the signed timestamp: a captured request resent with a
new or missing vendor delivery-id header is still a replay (the vendor's id is kept as a header for tracing).

The store happens in a producer span whose W3C trace context travels in the raw message's headers
(continuing a `traceparent` the sender gave), so the ticket's trace follows it through ingest and the agent.

Non-JSON bodies are refused with 400 and nothing is recorded or published: every supported vendor
sends JSON, so anything else is a misconfigured sender that should hear about it at once rather
than through the dead-letter topic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from opentelemetry import trace

from streamdesk import db, telemetry, topics
from streamdesk.config import Settings
from streamdesk.gateway import intake
from streamdesk.gateway.exceptions import (
    GatewayUnavailableError,
    InvalidPayloadError,
    PayloadTooLargeError,
    UnknownSourceError,
)
from streamdesk.gateway.models import SOURCES, Delivery, Source
from streamdesk.gateway.signatures import SignedRequest

log = logging.getLogger(__name__)
MAPPING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_DELIVERY_ID = 256


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


def delivery_id(*, signature: str) -> str:
    """The replay key: a digest of the signature that matched, so a function of exactly what the sender signed.

    Every supported scheme signs the body with a timestamp (HubSpot and Contentful also the method and
    path), so the same signed request always has the same key and no unsigned header can change it.
    """
    return "sha256:" + hashlib.sha256(signature.encode()).hexdigest()


def vendor_delivery_id(*, source: Source, request: SignedRequest) -> str | None:
    """The vendor's own delivery id header (unsigned: kept for tracing only), cut to a sane length."""
    value = request.headers.get(source.delivery_header, "").strip() if source.delivery_header else ""
    return value[:MAX_DELIVERY_ID] or None


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


def accept(
    *,
    source_name: str,
    request: SignedRequest,
    settings: Settings,
    mapping: str | None = None,
    now: float | None = None,
) -> Delivery:
    """Verify and deduplicate one webhook and store it for the relay; the returned Delivery is committed."""
    received_at = datetime.now(UTC)
    source = get_source(name=source_name)
    mapping = check_mapping(mapping=mapping) if source.family == "mapped" else None
    check_size(size=len(request.body), limit=settings.ingest.max_body_bytes)
    signature = verify(source=source, request=request, settings=settings, now=now)
    payload = parse_json(body=request.body)
    delivery = delivery_id(signature=signature)
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
        vendor_id = vendor_delivery_id(source=source, request=request)
        if vendor_id:
            headers["vendor-delivery-id"] = vendor_id
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
            statement_timeout_s = settings.database.request_statement_timeout_s
            with (
                db.connect(db.database_url(settings), statement_timeout_s=statement_timeout_s) as conn,
                conn.transaction(),
            ):
                intake.store_delivery(
                    conn=conn,
                    source=source.name,
                    delivery_id=delivery,
                    received_at=received_at,
                    topic=accepted.topic,
                    key=accepted.key,
                    headers=accepted.headers,
                    body=request.body,
                )
        except psycopg.OperationalError as exc:
            raise GatewayUnavailableError(f"the database is unreachable, nothing was accepted: {exc}") from exc
    return accepted
