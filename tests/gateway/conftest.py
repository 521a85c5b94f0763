"""Gateway fixtures: signing as each vendor does, an app on the real broker and database, a raw-topic reader."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from streamdesk import db
from streamdesk.config import get_settings
from streamdesk.gateway import signatures

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

BASE_URL = "http://testserver"
Signer = Callable[..., dict[str, str]]


def secret_of(source: str) -> str:
    """The secret the test settings hold for `source`."""
    return getattr(get_settings().gateway, f"{source}_secret").get_secret_value()


def sign(
    source: str,
    body: bytes,
    *,
    path: str | None = None,
    secret: str | None = None,
    at: float | None = None,
    delivery_id: str | None = None,
) -> dict[str, str]:
    """The headers `source` would send with `body` POSTed to `path`, signed at `at` (unix seconds)."""
    secret = secret or secret_of(source)
    at = time.time() if at is None else at
    path = path or f"/webhooks/{source}"
    if source == "hubspot":
        ms = int(at * 1000)
        signature = signatures.sign_hubspot(
            secret=secret, method="POST", url=BASE_URL + path, body=body, timestamp_ms=ms
        )
        return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(ms)}
    if source == "zendesk":
        stamp = datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "X-Zendesk-Webhook-Signature": signatures.sign_zendesk(secret=secret, timestamp=stamp, body=body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        }
        if delivery_id:
            headers["X-Zendesk-Webhook-Invocation-Id"] = delivery_id
        return headers
    if source == "stripe":
        return {"Stripe-Signature": signatures.timestamped_header(secret=secret, timestamp=int(at), body=body)}
    if source == "contentful":
        topic = {"x-contentful-topic": "ContentManagement.Entry.publish"}
        signed = signatures.sign_contentful(
            secret=secret, method="POST", path=path, body=body, timestamp_ms=int(at * 1000), headers=topic
        )
        headers = {**topic, **signed}
        if delivery_id:
            headers["X-Contentful-Idempotency-Key"] = delivery_id
        return headers
    headers = {"X-Streamdesk-Signature": signatures.timestamped_header(secret=secret, timestamp=int(at), body=body)}
    if delivery_id:
        headers["X-Streamdesk-Delivery-Id"] = delivery_id
    return headers


@pytest.fixture
def signer() -> Signer:
    """`sign(source, body, ...)`: headers as the vendor would send them."""
    return sign


@pytest.fixture
def gateway_db(clean_db: str) -> str:
    """The clean session database with no remembered webhook deliveries."""
    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("TRUNCATE webhook_deliveries")
    return clean_db


@pytest.fixture
def client(topics_ready: str, gateway_db: str) -> Iterator[TestClient]:
    """The API on the test's broker and the session database."""
    from streamdesk.api.app import create_app

    with warnings.catch_warnings():  # starlette suggests httpx2; httpx is what is installed
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    with TestClient(create_app(), base_url=BASE_URL) as test_client:
        yield test_client


def read_topic(bootstrap_servers: str, topic: str, *, timeout_s: float = 15.0) -> list[Message]:
    """Every message on `topic` right now (high watermarks decide how many), read from the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"gateway-test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        expected = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            expected += high - low
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
        assert len(messages) == expected, f"read {len(messages)} of {expected} messages from {topic}"
        return messages
    finally:
        consumer.close()


def relay_stored() -> int:
    """Run the real relay until nothing stored is due (intake -> broker); return how many deliveries it published."""
    from streamdesk.gateway.relay import Relay

    relay = Relay(settings=get_settings())
    try:
        return sum(iter(relay.relay_once, 0))
    finally:
        relay.close()


def remembered(database_url: str) -> list[tuple[str, str]]:
    """The (source, delivery_id) rows of webhook_deliveries."""
    with db.connect(database_url) as conn:
        return [(row[0], row[1]) for row in conn.execute("SELECT source, delivery_id FROM webhook_deliveries")]
