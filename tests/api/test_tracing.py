"""POST /tickets puts the W3C trace context of its producer span on the canonical ticket event."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition

from streamdesk import telemetry, topics
from tests.api.conftest import Stack, auth
from tests.gateway.conftest import relay_stored

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def ticket_headers(bootstrap: str, *, event_id: str) -> dict[str, str]:
    """The headers of the canonical.ticket message whose event id is `event_id`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-trace-{uuid.uuid4()}"})
    try:
        for partition in consumer.list_topics(topics.TICKET, timeout=10).topics[topics.TICKET].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topics.TICKET, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topics.TICKET, partition, low)])
            for message in consumer.consume(num_messages=high - low, timeout=10):
                if message.error() is None and event_id.encode() in (message.value() or b""):
                    return telemetry.header_map(message.headers())
        raise AssertionError(f"no canonical.ticket message carries event {event_id}")
    finally:
        consumer.close()


def test_submitted_ticket_carries_the_callers_trace(stack: Stack) -> None:
    headers = auth("agent") | {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    response = stack.client.post("/tickets", json={"subject": "Traced?", "body": "Yes."}, headers=headers)
    assert response.status_code == 202, response.text
    assert relay_stored() == 1
    carried = ticket_headers(stack.bootstrap, event_id=response.json()["event_id"])
    _, trace_id, span_id, _ = carried["traceparent"].split("-")
    assert trace_id == TRACE_ID
    assert span_id != CALLER_SPAN  # the API's own producer span, a child of the caller's
