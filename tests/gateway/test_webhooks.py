"""POST /webhooks/{source} on the real broker and database: accepted, replayed, forged, refused."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from confluent_kafka import Message
from fastapi import FastAPI

from streamdesk import db
from streamdesk.api.app import create_app
from streamdesk.config import Settings, get_settings
from streamdesk.gateway import intake
from streamdesk.gateway.relay import Relay
from streamdesk.kafka import PublishError
from streamdesk.runtime.embedded import free_port
from streamdesk.streams import relay as relay_module
from tests.gateway.conftest import BASE_URL, Signer, read_topic, relay_stored, remembered, sign

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.stack

PAYLOADS: dict[str, Any] = {
    "salesforce": {"payload": {"ChangeEventHeader": {"entityName": "Account", "recordIds": ["001xx1"]}}},
    "hubspot": [{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 123}],
    "zendesk": {"type": "zen:event-type:ticket.created", "detail": {"id": "5158", "subject": "Cannot log in"}},
    "wordpress": {"ID": 4, "post_title": "Hello", "post_status": "publish"},
    "contentful": {"sys": {"id": "entry-7", "type": "Entry"}, "fields": {}},
    "stripe": {"id": "evt_1", "type": "customer.updated", "data": {"object": {"id": "cus_9"}}},
    "generic": {"id": "rec-1", "name": "anything"},
}
KEYS = {
    "salesforce": "001xx1",
    "hubspot": "123",
    "zendesk": "5158",
    "wordpress": "4",
    "contentful": "entry-7",
    "stripe": "cus_9",
    "generic": "rec-1",
}
TOPICS = {source: f"raw.{source}" for source in PAYLOADS} | {"generic": "raw.mapped"}


def header_map(message: Message) -> dict[str, str]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {name: value.decode() if isinstance(value, bytes) else value or "" for name, value in pairs}


def path_of(source: str) -> str:
    return f"/webhooks/{source}" + ("?mapping=crm.accounts" if source == "generic" else "")


def post(client: TestClient, signer: Signer, source: str, body: bytes, **sign: Any) -> Any:
    headers = signer(source, body, path=path_of(source), **sign) | {"Content-Type": "application/json"}
    return client.post(path_of(source), content=body, headers=headers)


@contextmanager
def app_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def test_each_source_lands_verbatim_on_its_raw_topic(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    for source, payload in PAYLOADS.items():
        body = json.dumps(payload, indent=1).encode()  # whitespace included: bytes travel untouched
        response = post(client, signer, source, body, delivery_id=f"{source}-delivery-1")
        assert response.status_code == 202, response.text
        assert response.json()["topic"] == TOPICS[source]
        assert response.json()["delivery_id"].startswith("sha256:")
        assert relay_stored() == 1
        [message] = read_topic(topics_ready, TOPICS[source])
        headers = header_map(message)
        assert message.value() == body
        assert message.key() == KEYS[source].encode()
        assert headers["source"] == source
        assert headers["delivery-id"] == response.json()["delivery_id"]
        assert headers["intake-id"].isdigit()
        assert headers["received-at"].endswith("+00:00")
        if source in ("zendesk", "contentful", "salesforce", "wordpress", "generic"):
            assert headers["vendor-delivery-id"] == f"{source}-delivery-1"
        if source == "contentful":
            assert headers["x-contentful-topic"] == "ContentManagement.Entry.publish"
        if source == "generic":
            assert headers["mapping"] == "crm.accounts"
    assert len(remembered(gateway_db)) == len(PAYLOADS)


@pytest.mark.parametrize("source", ["zendesk", "salesforce"])
def test_a_replayed_signed_request_gets_409_whatever_its_delivery_id_header(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer, source: str
) -> None:
    body = json.dumps(PAYLOADS[source]).encode()
    at = time.time()
    signed = signer(source, body, path=path_of(source), at=at, delivery_id="8350205582")
    vendor_header = "X-Zendesk-Webhook-Invocation-Id" if source == "zendesk" else "X-Streamdesk-Delivery-Id"
    first = client.post(path_of(source), content=body, headers=signed)
    assert first.status_code == 202
    assert relay_stored() == 1  # one batch per publish: Tansu's high watermark counts a batch's first record only
    for replayed in (signed | {vendor_header: "8350205583"}, {k: v for k, v in signed.items() if k != vendor_header}):
        again = client.post(path_of(source), content=body, headers=replayed)
        assert again.status_code == 409, again.text
        assert first.json()["delivery_id"] in again.json()["detail"]
    resigned = post(client, signer, source, body, at=at - 5, delivery_id="8350205582")  # a new signature
    assert resigned.status_code == 202
    assert relay_stored() == 1
    assert len(read_topic(topics_ready, TOPICS[source])) == 2
    assert len(remembered(gateway_db)) == 2


def test_an_identical_stripe_event_is_published_once(client: TestClient, topics_ready: str, gateway_db: str) -> None:
    stripe_body = json.dumps(PAYLOADS["stripe"]).encode()
    headers = sign("stripe", stripe_body) | {"Content-Type": "application/json"}
    assert client.post("/webhooks/stripe", content=stripe_body, headers=headers).status_code == 202
    assert client.post("/webhooks/stripe", content=stripe_body, headers=headers).status_code == 409
    assert relay_stored() == 1
    assert len(read_topic(topics_ready, "raw.stripe")) == 1


def test_forged_unsigned_and_stale_webhooks_get_401_and_nothing_is_published(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    for source, payload in PAYLOADS.items():
        body = json.dumps(payload).encode()
        forged = post(client, signer, source, body, secret="not-the-secret")
        assert forged.status_code == 401, (source, forged.text)
        assert "does not match" in forged.json()["detail"]
        stale = post(client, signer, source, body, at=time.time() - 3600)
        assert stale.status_code == 401, (source, stale.text)
        unsigned = client.post(path_of(source), content=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        assert "is missing" in unsigned.json()["detail"]
        assert read_topic(topics_ready, TOPICS[source]) == []
    body = json.dumps(PAYLOADS["hubspot"]).encode()
    tampered = client.post("/webhooks/hubspot", content=body + b" ", headers=signer("hubspot", body))
    assert tampered.status_code == 401
    assert remembered(gateway_db) == []


def test_bad_requests_are_refused_before_anything_is_recorded(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    not_json = b"<soapenv:Envelope/>"
    response = client.post("/webhooks/wordpress", content=not_json, headers=signer("wordpress", not_json))
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    body = b'{"id": "rec-1"}'
    unmapped = client.post("/webhooks/generic", content=body, headers=signer("generic", body))
    assert unmapped.status_code == 400
    assert "mapping=NAME" in unmapped.json()["detail"]
    unknown = client.post("/webhooks/jira", content=body, headers=signer("generic", body))
    assert unknown.status_code == 404
    assert remembered(gateway_db) == []
    assert read_topic(topics_ready, "raw.wordpress") == []
    assert read_topic(topics_ready, "raw.mapped") == []


def test_oversized_bodies_get_413(topics_ready: str, gateway_db: str, signer: Signer) -> None:
    base = get_settings()
    settings = base.model_copy(update={"ingest": base.ingest.model_copy(update={"max_body_bytes": 64})})
    with app_client(create_app(settings)) as small:
        body = json.dumps({"ID": 4, "post_content": "x" * 100}).encode()
        response = small.post("/webhooks/wordpress", content=body, headers=signer("wordpress", body))
        assert response.status_code == 413
        assert "64-byte limit" in response.json()["detail"]
        chunks = iter([b'{"ID": 4, ', b'"post_content": "' + b"y" * 80 + b'"}'])
        streamed = small.post("/webhooks/wordpress", content=chunks, headers=signer("wordpress", body))
        assert streamed.status_code == 413
    assert read_topic(topics_ready, "raw.wordpress") == []


def test_a_body_just_under_the_limit_is_accepted_and_lands_verbatim(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    limit = get_settings().ingest.max_body_bytes
    payload = PAYLOADS["zendesk"] | {"detail": {"id": "5158", "description": ""}}
    body = json.dumps(payload).encode().replace(b'"description": ""', b'"description": "' + b"z" * 100 + b'"')
    body = body.replace(b"z" * 100, b"z" * (limit - len(body) + 100))  # over 1 MB, the producers' old default
    assert len(body) == limit
    response = post(client, signer, "zendesk", body, delivery_id="big-1")
    assert response.status_code == 202, response.text
    assert relay_stored() == 1
    [message] = read_topic(topics_ready, "raw.zendesk")
    assert message.value() == body


def settings_with(section: str, **values: Any) -> Settings:
    """The test settings with `values` changed in one `section` (e.g. an unreachable broker)."""
    base = get_settings()
    return base.model_copy(update={section: getattr(base, section).model_copy(update=values)})


def post_stripe(settings: Settings, signer: Signer) -> tuple[bytes, Any]:
    """POST the signed Stripe fixture to a gateway running on `settings`: the body and the response."""
    body = json.dumps(PAYLOADS["stripe"]).encode()
    with app_client(create_app(settings)) as offline:
        return body, offline.post("/webhooks/stripe", content=body, headers=signer("stripe", body))


def test_a_webhook_accepted_while_the_broker_is_down_is_relayed_when_it_is_back(
    topics_ready: str, gateway_db: str, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = settings_with("kafka", bootstrap_servers=f"127.0.0.1:{free_port()}")
    body, response = post_stripe(dead, signer)
    assert response.status_code == 202, response.text
    assert len(remembered(gateway_db)) == 1
    offline_relay = Relay(settings=dead)
    with monkeypatch.context() as short:  # only the unreachable broker's flush is cut short, not the live one's
        short.setattr(relay_module, "FLUSH_TIMEOUT_S", 1.0)
        with pytest.raises(PublishError):
            offline_relay.relay_once()
        offline_relay.close()
    assert relay_stored() == 1
    [message] = read_topic(topics_ready, "raw.stripe")
    assert message.value() == body
    assert relay_stored() == 0  # published and not yet due again


def test_an_unreachable_database_is_503_and_nothing_is_accepted(signer: Signer) -> None:
    dead = settings_with("database", url=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    _, response = post_stripe(dead, signer)
    assert response.status_code == 503
    assert "nothing was accepted" in response.json()["detail"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"broker": "ok", "database": "ok"}}


def test_readiness_names_what_is_unreachable() -> None:
    base = get_settings()
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"}),
            "database": base.database.model_copy(update={"url": f"postgresql://nobody@127.0.0.1:{free_port()}/none"}),
        }
    )
    with app_client(create_app(settings)) as app:
        assert app.get("/healthz").status_code == 200
        response = app.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"].startswith("unreachable at 127.0.0.1:")
    assert checks["database"].startswith("unreachable")


def test_deliveries_are_remembered_once_and_can_be_forgotten(gateway_db: str) -> None:
    from datetime import UTC, datetime, timedelta

    from streamdesk import db
    from streamdesk.gateway.exceptions import ReplayedDeliveryError

    now = datetime.now(UTC)
    with db.connect(gateway_db) as conn:
        intake.store_delivery(conn=conn, source="stripe", delivery_id="abc", received_at=now - timedelta(days=8))
        intake.store_delivery(conn=conn, source="zendesk", delivery_id="abc", received_at=now)
        intake.store_delivery(
            conn=conn,
            source="hubspot",
            delivery_id="unprocessed",
            received_at=now - timedelta(days=8),
            topic="raw.hubspot",
            key="1",
            headers={},
            body=b"[]",
        )
        conn.commit()
        with pytest.raises(ReplayedDeliveryError, match="stripe delivery 'abc' was accepted before"):
            intake.store_delivery(conn=conn, source="stripe", delivery_id="abc", received_at=now)
        conn.rollback()
        assert intake.forget_deliveries(conn=conn, before=now - timedelta(days=7)) == 1
        conn.commit()
    assert sorted(remembered(gateway_db)) == [("hubspot", "unprocessed"), ("zendesk", "abc")]


def test_a_delivery_the_topic_refuses_is_dead_lettered_and_does_not_hold_up_the_rest(
    topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    base = get_settings()
    limit = base.ingest.max_body_bytes
    roomy = base.model_copy(update={"ingest": base.ingest.model_copy(update={"max_body_bytes": 2 * limit})})
    big = json.dumps({"ID": 5, "post_content": "x" * (limit + 200_000)}).encode()  # the gateway's limit was raised,
    small = json.dumps(PAYLOADS["wordpress"]).encode()  # the raw topic's (from the relay's settings) was not
    with app_client(create_app(roomy)) as client:
        for body in (big, small):
            assert post(client, signer, "wordpress", body).status_code == 202
    assert relay_stored() == 2
    [published] = read_topic(topics_ready, "raw.wordpress")
    assert published.value() == small
    [announced] = read_topic(topics_ready, "deadletter")
    letter = json.loads(announced.value() or b"{}")
    assert letter["topic"] == "raw.wordpress" and letter["partition"] == -1
    assert letter["payload"] == "table" and letter["value_b64"] is None and letter["dead_letter_id"]
    assert "does not fit topic 'raw.wordpress'" in letter["reason"] and f"{len(big)}-byte delivery" in letter["reason"]
    with db.connect(gateway_db) as conn:
        [(stored,)] = conn.execute("SELECT value FROM dead_letters WHERE id = %s", (letter["dead_letter_id"],))
    assert bytes(stored) == big
    with db.connect(gateway_db) as conn:
        [(value, reason)] = conn.execute("SELECT value, reason FROM dead_letters").fetchall()
        assert bytes(value) == big and reason == letter["reason"]
        assert intake.unprocessed(conn=conn) == 1  # the small one, until ingest stores it
    assert relay_stored() == 0


def test_a_delivery_ingest_never_processes_is_dead_lettered_after_the_last_attempt(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    base = get_settings()
    once = base.model_copy(
        update={"gateway": base.gateway.model_copy(update={"relay_max_attempts": 1, "redeliver_after_s": 0.0})}
    )
    body = json.dumps(PAYLOADS["wordpress"]).encode()
    assert post(client, signer, "wordpress", body).status_code == 202
    relay = Relay(settings=once)
    try:
        assert relay.relay_once() == 1  # published once; no ingest worker runs here, so it is never processed
        assert relay.relay_once() == 0
        assert relay.dead_letter_exhausted() == 1
        assert relay.dead_letter_exhausted() == 0
    finally:
        relay.close()
    [announced] = read_topic(topics_ready, "deadletter")
    letter = json.loads(announced.value() or b"{}")
    assert letter["error_type"] == "UnprocessedDeliveryError" and "published 1 times" in letter["reason"]
    with db.connect(gateway_db) as conn:
        [(stored,)] = conn.execute("SELECT value FROM dead_letters WHERE id = %s", (letter["dead_letter_id"],))
        assert bytes(stored) == body
        assert intake.unprocessed(conn=conn) == 0
