"""OpenTelemetry: one tracer provider per process, W3C trace context in Kafka headers, GenAI span attributes.

Exporters come from `Settings.telemetry`: spans printed to stderr (`console_spans`) and/or sent over
OTLP/HTTP (`otlp_endpoint`). Without either, spans still get real trace and span ids, which the audit
trail records, and tests can attach an in-memory exporter with `add_exporter`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from streamdesk.config import TelemetrySettings, get_settings

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

_lock = threading.Lock()
_provider: TracerProvider | None = None


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector endpoint (`http://collector:4318` gains `/v1/traces`)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def configure(*, settings: TelemetrySettings | None = None, service_name: str = "streamdesk") -> TracerProvider:
    """The process's tracer provider, installed on first call with the exporters `settings` select."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        settings = settings or get_settings().telemetry
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if settings.console_spans:
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=otlp_traces_url(settings.otlp_endpoint))
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def add_exporter(exporter: SpanExporter) -> None:
    """Also send every finished span to `exporter`, synchronously (tests use the SDK's in-memory one)."""
    configure().add_span_processor(SimpleSpanProcessor(exporter))


def tracer(name: str = "streamdesk") -> trace.Tracer:
    """A tracer of the process's provider (configured from the settings on first use)."""
    return configure().get_tracer(name)


def shutdown() -> None:
    """Flush and stop the exporters (call before the process exits)."""
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the W3C trace context of the current span (`traceparent`, `tracestate`)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


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
