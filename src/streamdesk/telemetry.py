"""OpenTelemetry: one tracer and one meter provider per process, W3C trace context in Kafka headers, GenAI spans.

Exporters come from `Settings.telemetry`: spans printed to stderr (`console_spans`) and/or sent over
OTLP/HTTP (`otlp_endpoint`). Without either, spans still get real trace and span ids, which the audit
trail records, and tests can attach an in-memory exporter with `add_exporter`. Hot paths (ingest) ask
`exporting()` first and, when nothing would see their spans, only pass the trace headers on. Every
exporter gets its spans through `RedactingSpanExporter`, so PII in an attribute, an event (a recorded
exception's message) or a status never leaves the process.

Metrics (consumer lag, answer and ingest latency, model tokens) go to the same places (`console_metrics`,
`otlp_endpoint`); with neither, the instruments are no-ops. Tests read them with `use_metric_reader`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status
from opentelemetry.util.types import Attributes

from streamdesk.config import TelemetrySettings, get_settings
from streamdesk.guardrails import service as guardrails

GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace-context headers carried on every message the agent consumes or produces."""

log = logging.getLogger(__name__)
_lock = threading.Lock()
_provider: TracerProvider | None = None
_exporting = False


def _redacted_attributes(attributes: Attributes) -> dict[str, Any]:
    redacted = {name: guardrails.redact_json(value) for name, value in (attributes or {}).items()}
    return {name: tuple(value) if isinstance(value, list) else value for name, value in redacted.items()}


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of a finished span with PII redacted from its attributes, events and status description."""
    description = span.status.description
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redacted_attributes(span.attributes),
        events=[Event(event.name, _redacted_attributes(event.attributes), event.timestamp) for event in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, guardrails.redact_pii(description) if description else None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Hands spans to another exporter with PII redacted (`redacted_span`): the one way spans leave the process."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export the redacted copies."""
        return self.exporter.export([redacted_span(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.exporter.force_flush(timeout_millis)


def otlp_url(endpoint: str, signal: str) -> str:
    """The OTLP/HTTP URL of `signal` (traces, metrics) at a collector (`http://collector:4318` gains `/v1/traces`)."""
    endpoint = endpoint.rstrip("/")
    for known in ("/v1/traces", "/v1/metrics"):
        endpoint = endpoint.removesuffix(known)
    return f"{endpoint}/v1/{signal}"


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector endpoint (`http://collector:4318` gains `/v1/traces`)."""
    return otlp_url(endpoint, "traces")


def configure(*, settings: TelemetrySettings | None = None, service_name: str = "streamdesk") -> TracerProvider:
    """The process's tracer provider, installed on first call with the exporters `settings` select."""
    global _provider, _exporting
    with _lock:
        if _provider is not None:
            return _provider
        settings = settings or get_settings().telemetry
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if settings.console_spans:
            provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(ConsoleSpanExporter(out=sys.stderr))))
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=otlp_url(settings.otlp_endpoint, "traces"))
            provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(exporter)))
        _exporting = bool(settings.console_spans or settings.otlp_endpoint)
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def add_exporter(exporter: SpanExporter) -> None:
    """Also send every finished span (redacted) to `exporter`, synchronously (tests use the SDK's in-memory one)."""
    global _exporting
    configure().add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exporter)))
    _exporting = True


def exporting() -> bool:
    """Whether finished spans go anywhere; hot paths skip their own spans when they do not."""
    return _exporting


def tracer(name: str = "streamdesk") -> trace.Tracer:
    """A tracer of the process's provider (configured from the settings on first use)."""
    return configure().get_tracer(name)


def shutdown() -> None:
    """Flush and stop the exporters (call before the process exits)."""
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()
    if _meter_provider is not None:
        _meter_provider.shutdown()


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the W3C trace context of the current span (`traceparent`, `tracestate`)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the W3C trace-context entries of `headers` (a `header_map`); empty when the message carries none."""
    return {name: headers[name] for name in TRACE_HEADERS if name in headers}


def header_map(headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    """Message headers as a str -> str map (Kafka clients give lists of (name, bytes) pairs)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    found: dict[str, str] = {}
    for name, value in pairs:
        if value is not None:
            found[str(name).lower()] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return found


def extract_context(headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Context:
    """The trace context carried by message `headers` (an empty context when there is none)."""
    return propagate.extract(header_map(headers))


def span_ids(span: trace.Span | None = None) -> tuple[str | None, str | None]:
    """`(trace_id, span_id)` of `span` (default: the current one) as hex, or Nones when it is not recording."""
    context = (span or trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return None, None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def continue_span(
    name: str, headers: Mapping[str, str], *, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Any]:
    """A consumer span continuing the trace `headers` carry (a `trace_headers` map), as the current span."""
    parent = propagate.extract(headers)
    return tracer(__name__).start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    )


def batch_span(
    name: str, carriers: Iterable[Mapping[str, str]], *, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Any]:
    """A consumer span over a batch, linked to the trace of every message that carries one.

    When no exporter would see it (`exporting()` is false) this is a no-op and the carriers are not read.
    """
    if not _exporting:
        return nullcontext()
    links = []
    for carrier in carriers:
        context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    return tracer(__name__).start_as_current_span(
        name, kind=trace.SpanKind.CONSUMER, links=links, attributes=attributes
    )


# Metrics.

TOKEN_TYPE = "gen_ai.token.type"
ADAPTER = "streamdesk.adapter"
BASE_ADAPTER = "base"
"""The adapter label of calls made with the base model alone."""
_meter_provider: MeterProvider | None = None
_instruments: Instruments | None = None
_lag_watches: dict[tuple[str, str], tuple[str, ...]] = {}


@dataclass(frozen=True)
class Instruments:
    """The process's metric instruments, made from the current meter provider."""

    answer_duration: metrics.Histogram
    model_tokens: metrics.Counter
    model_duration: metrics.Histogram
    ingest_batch_duration: metrics.Histogram
    ingest_messages: metrics.Counter
    consumer_lag: metrics.ObservableGauge


def _metric_readers(settings: TelemetrySettings) -> list[MetricReader]:
    interval_ms = settings.metrics_interval_s * 1000
    readers: list[MetricReader] = []
    if settings.console_metrics:
        exporter = ConsoleMetricExporter(out=sys.stderr)
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        otlp = OTLPMetricExporter(endpoint=otlp_url(settings.otlp_endpoint, "metrics"))
        readers.append(PeriodicExportingMetricReader(otlp, export_interval_millis=interval_ms))
    return readers


def _install_meter_provider(
    *, settings: TelemetrySettings, service_name: str, extra: Sequence[MetricReader]
) -> Instruments:
    """Replace the process's meter provider (caller holds `_lock`) and remake the instruments from it."""
    global _meter_provider, _instruments
    readers = _metric_readers(settings) + list(extra)
    old = _meter_provider
    _meter_provider = None
    if readers:
        _meter_provider = MeterProvider(
            metric_readers=readers, resource=Resource.create({"service.name": service_name})
        )
        meter = _meter_provider.get_meter("streamdesk")
    else:
        meter = metrics.NoOpMeterProvider().get_meter("streamdesk")
    _instruments = Instruments(
        answer_duration=meter.create_histogram(
            "streamdesk.answer.duration", unit="s", description="Time from a ticket event to its stored answer."
        ),
        model_tokens=meter.create_counter(
            "streamdesk.model.tokens", unit="{token}", description="Model tokens by type, model and adapter."
        ),
        model_duration=meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of one model call."
        ),
        ingest_batch_duration=meter.create_histogram(
            "streamdesk.ingest.batch.duration", unit="s", description="Time to process one ingest batch, by hop."
        ),
        ingest_messages=meter.create_counter(
            "streamdesk.ingest.messages", unit="{message}", description="Messages the ingest hops processed."
        ),
        consumer_lag=meter.create_observable_gauge(
            "streamdesk.consumer.lag",
            callbacks=[_observe_lag],
            unit="{message}",
            description="Messages a consumer group has not committed yet, per topic and partition.",
        ),
    )
    if old is not None:
        old.shutdown()
    return _instruments


def configure_metrics(*, settings: TelemetrySettings | None = None, service_name: str = "streamdesk") -> Instruments:
    """The process's instruments, installed on first call with the exporters `settings` select."""
    with _lock:
        if _instruments is not None:
            return _instruments
        settings = settings or get_settings().telemetry
        return _install_meter_provider(settings=settings, service_name=service_name, extra=())


def use_metric_reader(reader: MetricReader, *, settings: TelemetrySettings | None = None) -> Instruments:
    """Start a fresh meter provider that also feeds `reader` (tests use the SDK's InMemoryMetricReader)."""
    with _lock:
        settings = settings or get_settings().telemetry
        return _install_meter_provider(settings=settings, service_name="streamdesk", extra=[reader])


def instruments() -> Instruments:
    """The process's metric instruments (configured from the settings on first use)."""
    return _instruments or configure_metrics()


def record_generation(
    *, model: str, adapter: str | None, input_tokens: int, output_tokens: int, seconds: float
) -> None:
    """Count one model call's tokens and time it, labelled by model and adapter."""
    found = instruments()
    labels = {GEN_AI_REQUEST_MODEL: model, ADAPTER: adapter or BASE_ADAPTER}
    found.model_tokens.add(input_tokens, {**labels, TOKEN_TYPE: "input"})
    found.model_tokens.add(output_tokens, {**labels, TOKEN_TYPE: "output"})
    found.model_duration.record(seconds, {**labels, GEN_AI_OPERATION: "chat"})


def record_answer(*, seconds: float, status: str) -> None:
    """Time one answered ticket event, labelled by the answer's status."""
    instruments().answer_duration.record(seconds, {"streamdesk.answer.status": status})


def record_ingest_batch(*, hop: str, messages: int, seconds: float) -> None:
    """Time one ingest batch of `messages` at `hop` (raw, document, entity, ticket)."""
    found = instruments()
    found.ingest_batch_duration.record(seconds, {"streamdesk.ingest.hop": hop})
    found.ingest_messages.add(messages, {"streamdesk.ingest.hop": hop})


def watch_consumer_lag(*, bootstrap_servers: str, group: str, topic_names: Iterable[str]) -> None:
    """Report `group`'s lag on `topic_names` per partition at every metric collection."""
    with _lock:
        _lag_watches[(bootstrap_servers, group)] = tuple(topic_names)


def forget_consumer_lag(*, bootstrap_servers: str, group: str) -> None:
    """Stop reporting `group`'s lag (its broker is going away)."""
    with _lock:
        _lag_watches.pop((bootstrap_servers, group), None)


def _observe_lag(options: CallbackOptions) -> Iterator[Observation]:
    from streamdesk.lag import partition_lag

    timeout_s = max(1.0, min(10.0, options.timeout_millis / 1000))
    for (bootstrap_servers, group), names in list(_lag_watches.items()):
        try:
            lags = partition_lag(bootstrap_servers, group=group, topic_names=names, timeout_s=timeout_s)
        except Exception as exc:  # a metrics collection must not fail because the broker is away
            log.warning("consumer lag of %s unavailable: %s", group, exc)
            continue
        for (topic, partition), lag in sorted(lags.items()):
            yield Observation(
                lag,
                {
                    "messaging.consumer.group.name": group,
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                },
            )
