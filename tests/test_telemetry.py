"""Telemetry: W3C trace context across the ingest hop, settings, and the metrics (lag, latency, tokens)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from streamdesk import telemetry, topics
from streamdesk.config import TelemetrySettings
from streamdesk.ingest import processors
from streamdesk.kafka import Publisher
from streamdesk.streams.messages import RawMessage

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
ZENDESK_WEBHOOK = {
    "type": "zen:event-type:ticket.created",
    "id": "evt-telemetry-1",
    "time": "2026-11-23T08:00:00Z",
    "account_id": 1,
    "detail": {"id": "9001", "subject": "Where is my order?", "description": "It has not arrived.", "status": "NEW"},
}


def zendesk_message(headers: dict[str, str]) -> RawMessage:
    return RawMessage(topic="raw.zendesk", value=json.dumps(ZENDESK_WEBHOOK).encode(), headers=headers, offset=3)


def parts(traceparent: str) -> tuple[str, str]:
    """(trace id, parent span id) of a W3C traceparent."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, f"not a sampled W3C traceparent: {traceparent}"
    return trace_id, span_id


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    telemetry.add_exporter(exporter)
    return exporter


@pytest.fixture
def reader() -> InMemoryMetricReader:
    found = InMemoryMetricReader()
    telemetry.use_metric_reader(found, settings=TelemetrySettings())
    return found


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of metric `name` in one collection."""
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def test_trace_headers_keep_only_w3c_context() -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "k=v", "source": "zendesk"}
    assert telemetry.trace_headers(headers) == {"traceparent": TRACEPARENT, "tracestate": "k=v"}
    assert telemetry.trace_headers({"source": "zendesk"}) == {}


def test_inject_headers_keeps_the_given_headers(spans: InMemorySpanExporter) -> None:
    with telemetry.tracer("tests").start_as_current_span("send"):
        headers = telemetry.inject_headers({"delivery-id": "d1"})
        trace_id, span_id = telemetry.span_ids()
    assert headers["delivery-id"] == "d1"
    assert parts(headers["traceparent"]) == (trace_id, span_id)


def test_canonical_events_continue_the_raw_messages_trace(spans: InMemorySpanExporter) -> None:
    spans.clear()
    [event] = processors.traced_canonical_events(
        zendesk_message({"traceparent": TRACEPARENT, "source": "zendesk"}), max_body_bytes=100_000, tracing=True
    )
    [span] = [s for s in spans.get_finished_spans() if s.name == "process raw.zendesk"]
    assert event.topic == topics.TICKET
    assert span.kind is trace.SpanKind.CONSUMER
    assert span.parent is not None and trace.format_span_id(span.parent.span_id) == PARENT_ID
    assert trace.format_trace_id(span.context.trace_id) == TRACE_ID
    assert parts(event.headers["traceparent"]) == (TRACE_ID, trace.format_span_id(span.context.span_id))
    assert "source" not in event.headers


def test_canonical_events_pass_the_context_on_when_not_tracing() -> None:
    [event] = processors.traced_canonical_events(
        zendesk_message({"traceparent": TRACEPARENT}), max_body_bytes=100_000, tracing=False
    )
    assert event.headers == {"traceparent": TRACEPARENT}
    [untraced] = processors.traced_canonical_events(zendesk_message({}), max_body_bytes=100_000, tracing=True)
    assert untraced.headers == {}


def test_a_bad_raw_message_still_becomes_a_dead_letter_inside_its_span(spans: InMemorySpanExporter) -> None:
    spans.clear()
    bad = RawMessage(topic="raw.zendesk", value=b'{"type": 1}', headers={"traceparent": TRACEPARENT})
    result = processors.canonicalize([bad], max_body_bytes=100_000)
    assert len(result.dead_letters) == 1 and not result.outgoing
    [span] = [s for s in spans.get_finished_spans() if s.name == "process raw.zendesk"]
    assert span.status.status_code is trace.StatusCode.ERROR


def test_batch_span_links_every_traced_message(spans: InMemorySpanExporter) -> None:
    spans.clear()
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    carriers = [{"traceparent": TRACEPARENT}, {}, {"traceparent": other}]
    with telemetry.batch_span("store tickets", carriers, attributes={"messaging.batch.message_count": 3}):
        pass
    [span] = [s for s in spans.get_finished_spans() if s.name == "store tickets"]
    assert {trace.format_trace_id(link.context.trace_id) for link in span.links} == {TRACE_ID, "1" * 32}


def test_otlp_urls_and_settings() -> None:
    assert telemetry.otlp_url("http://collector:4318/", "metrics") == "http://collector:4318/v1/metrics"
    assert telemetry.otlp_url("http://collector:4318/v1/traces", "metrics") == "http://collector:4318/v1/metrics"
    with pytest.raises(ValidationError, match="otlp_endpoint"):
        TelemetrySettings(otlp_endpoint="collector:4318")
    with pytest.raises(ValidationError, match="metrics_interval_s"):
        TelemetrySettings(metrics_interval_s=0)


def test_model_answer_and_ingest_metrics_are_recorded(reader: InMemoryMetricReader) -> None:
    telemetry.record_generation(model="smollm2", adapter=None, input_tokens=120, output_tokens=8, seconds=0.5)
    telemetry.record_generation(model="smollm2", adapter="kto-3", input_tokens=100, output_tokens=4, seconds=0.25)
    telemetry.record_answer(seconds=1.5, status="draft")
    telemetry.record_ingest_batch(hop="ticket", messages=40, seconds=0.02)
    tokens = {
        (p.attributes["streamdesk.adapter"], p.attributes["gen_ai.token.type"]): p.value
        for p in points(reader, "streamdesk.model.tokens")
    }
    assert tokens == {("base", "input"): 120, ("base", "output"): 8, ("kto-3", "input"): 100, ("kto-3", "output"): 4}
    [answer] = points(reader, "streamdesk.answer.duration")
    assert (answer.count, answer.sum, answer.attributes["streamdesk.answer.status"]) == (1, 1.5, "draft")
    [batch] = points(reader, "streamdesk.ingest.batch.duration")
    assert batch.attributes["streamdesk.ingest.hop"] == "ticket" and batch.count == 1
    [messages] = points(reader, "streamdesk.ingest.messages")
    assert messages.value == 40
    assert {p.attributes["gen_ai.request.model"] for p in points(reader, "gen_ai.client.operation.duration")} == {
        "smollm2"
    }


@pytest.mark.stack
def test_consumer_lag_is_observed_per_partition(topics_ready: str, reader: InMemoryMetricReader) -> None:
    publisher = Publisher(topics_ready, client_id="tests")
    for n in range(3):  # one batch each: Tansu's high watermark counts a batch of records as one
        publisher.publish(topics.TICKET, b"{}", key="same-key", validate=False, headers={"n": str(n)})
        publisher.flush()
    telemetry.watch_consumer_lag(bootstrap_servers=topics_ready, group="lag-test", topic_names=[topics.TICKET])
    try:
        lags = {
            (p.attributes["messaging.destination.name"], p.attributes["messaging.destination.partition.id"]): p.value
            for p in points(reader, "streamdesk.consumer.lag")
            if p.attributes["messaging.consumer.group.name"] == "lag-test"
        }
    finally:
        telemetry.forget_consumer_lag(bootstrap_servers=topics_ready, group="lag-test")
    assert sum(lags.values()) == 3
    assert {topic for topic, _ in lags} == {topics.TICKET}
    assert len(lags) == len({partition for _, partition in lags}) >= 1
