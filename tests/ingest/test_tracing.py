"""A ticket's trace across the Kafka hops: webhook -> raw.zendesk -> real ingest worker -> canonical.ticket.

The worker runs with console spans on, so its "process raw.zendesk" span (printed to its log) is
checked to be the child of the webhook's producer span, and the canonical event carries that span.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamdesk import telemetry, topics
from streamdesk.config import get_settings, reset_settings
from streamdesk.gateway.relay import Relay
from tests.gateway.conftest import sign
from tests.ingest.conftest import IngestStack

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def console_spans() -> Iterator[None]:
    """The ingest worker of this module prints its spans (to its log)."""
    previous = os.environ.get("STREAMDESK_TELEMETRY__CONSOLE_SPANS")
    os.environ["STREAMDESK_TELEMETRY__CONSOLE_SPANS"] = "true"
    yield
    if previous is None:
        os.environ.pop("STREAMDESK_TELEMETRY__CONSOLE_SPANS", None)
    else:
        os.environ["STREAMDESK_TELEMETRY__CONSOLE_SPANS"] = previous


@pytest.fixture(scope="module")
def traced_stack(console_spans: None, ingest_stack: IngestStack) -> IngestStack:
    return ingest_stack


def canonical_ticket_headers(bootstrap: str, *, ticket_id: str, timeout_s: float = 90.0) -> dict[str, str]:
    """The headers of the first canonical.ticket message about `ticket_id`, read with a real consumer."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"t-trace-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([topics.TICKET])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if json.loads(message.value()).get("ticket_id") == ticket_id:
                return telemetry.header_map(message.headers())
        raise AssertionError(f"no canonical.ticket event for ticket {ticket_id} within {timeout_s}s")
    finally:
        consumer.close()


def test_canonical_ticket_continues_the_webhooks_trace(traced_stack: IngestStack) -> None:
    spans = InMemorySpanExporter()
    telemetry.add_exporter(spans)
    ticket_id = f"trace-{uuid.uuid4().hex[:8]}"
    body = json.dumps(
        {
            "type": "zen:event-type:ticket.created",
            "id": f"evt-{ticket_id}",
            "time": "2026-11-23T08:00:00Z",
            "account_id": 1,
            "detail": {"id": ticket_id, "subject": "Where is my order?", "description": "Not here.", "status": "NEW"},
        }
    ).encode()
    reset_settings()
    from streamdesk.api.app import create_app

    with TestClient(create_app(), base_url="http://testserver") as client:
        headers = sign("zendesk", body) | {"Content-Type": "application/json"}
        response = client.post("/webhooks/zendesk", content=body, headers=headers)
    assert response.status_code == 202, response.text
    relay = Relay(settings=get_settings())  # the gateway stored it; the relay puts it on raw.zendesk
    assert relay.relay_once() == 1
    relay.close()
    [webhook] = [s for s in spans.get_finished_spans() if s.name == "send raw.zendesk"]
    trace_id = f"{webhook.context.trace_id:032x}"
    webhook_span = f"{webhook.context.span_id:016x}"

    carried = canonical_ticket_headers(traced_stack.bootstrap_servers, ticket_id=ticket_id)
    _, carried_trace, carried_span, _ = carried["traceparent"].split("-")
    assert carried_trace == trace_id
    assert carried_span != webhook_span  # the worker's own span, between the webhook and the agent

    def worker_span() -> str | None:
        """The worker's printed span whose id the canonical event carries (ConsoleSpanExporter JSON)."""
        blocks = traced_stack.log_path.read_text(errors="replace").split("\n}\n")
        return next((block for block in blocks if f'"span_id": "0x{carried_span}"' in block), None)

    block = traced_stack.wait_for(worker_span, timeout_s=30, what="the worker's process span in its log")
    assert '"name": "process raw.zendesk"' in block
    assert f'"parent_id": "0x{webhook_span}"' in block
    assert f'"trace_id": "0x{trace_id}"' in block
