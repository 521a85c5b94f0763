"""The signed webhook sink: a receiver that checks the HMAC-SHA256 signature and the timestamp accepts its posts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from streamdesk.delivery.config import DeliverySettings
from streamdesk.delivery.exceptions import DeliveryRefusedError, NoDestinationError
from streamdesk.delivery.sinks import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSink,
    sign,
    sink_for,
    verify_signature,
)
from streamdesk.exceptions import ConfigurationError
from streamdesk.runtime.embedded import free_port
from tests.delivery.conftest import auto_reply

SECRET = "whsec-test-0123456789"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A helpdesk's webhook endpoint that verifies the signature (401 when it does not hold)."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        ok = verify_signature(
            body,
            secret=SECRET,
            timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
            signature=request.headers.get(SIGNATURE_HEADER, ""),
        )
        received.append({"ok": ok, "body": json.loads(body), "key": request.headers.get(IDEMPOTENCY_HEADER)})
        return JSONResponse({"ok": ok}, status_code=200 if ok else 401)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/hook", received
    server.should_exit = True
    thread.join(10)


def test_the_webhook_sinks_signature_verifies_at_the_receiver(receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    settings = DeliverySettings(webhook_url=url, webhook_secret=SECRET)
    sink = sink_for("freshdesk", settings=settings, sinks={})
    reply = auto_reply(1, ticket_id="FD-7")
    assert sink.send(reply, status="pending") == reply.reply_id
    (got,) = received
    assert got["ok"] and got["key"] == reply.reply_id
    assert got["body"]["ticket_id"] == "FD-7" and got["body"]["ticket_status"] == "pending"


def test_a_wrong_secret_is_refused_by_the_receiver(receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    sink = WebhookSink(client=httpx.Client(), url=url, secret="not-the-secret")
    with pytest.raises(DeliveryRefusedError, match="HTTP 401"):
        sink.send(auto_reply(2), status="pending")
    assert received[0]["ok"] is False


def test_a_signature_is_bound_to_its_body_and_its_time() -> None:
    now = str(int(time.time()))
    signature = sign(b'{"a":1}', secret=SECRET, timestamp=now)
    assert verify_signature(b'{"a":1}', secret=SECRET, timestamp=now, signature=signature)
    assert not verify_signature(b'{"a":2}', secret=SECRET, timestamp=now, signature=signature)
    old = str(int(time.time()) - 3600)
    assert not verify_signature(
        b'{"a":1}', secret=SECRET, timestamp=old, signature=sign(b'{"a":1}', secret=SECRET, timestamp=old)
    )


def test_no_destination_and_a_webhook_without_its_secret_are_refused_with_the_fix() -> None:
    with pytest.raises(NoDestinationError, match="STREAMDESK_DELIVERY__ZENDESK_URL"):
        sink_for("zendesk", settings=DeliverySettings(), sinks={})
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET"):
        DeliverySettings(webhook_url="http://127.0.0.1:1/hook")
