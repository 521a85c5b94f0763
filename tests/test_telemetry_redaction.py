"""Spans leave the process with PII redacted from attributes, recorded exceptions and status."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamdesk import telemetry

CARD = "4111 1111 1111 1111"


def test_exported_spans_carry_no_card_number() -> None:
    spans = InMemorySpanExporter()
    telemetry.add_exporter(spans)
    with (
        pytest.raises(ValueError, match="4111"),
        telemetry.tracer("tests").start_as_current_span("redaction probe", attributes={"ticket.body": CARD}) as span,
    ):
        span.set_attribute("ticket.numbers", [f"card {CARD}", "order #W2890441"])
        span.set_attribute("card.as_number", 4111111111111111)
        raise ValueError(f"refund to card {CARD} failed")
    (probe,) = [s for s in spans.get_finished_spans() if s.name == "redaction probe"]
    assert probe.attributes == {
        "ticket.body": "[CARD]",
        "ticket.numbers": ("card [CARD]", "order #W2890441"),
        "card.as_number": "[CARD]",
    }
    assert "4111" not in probe.to_json() and "[CARD]" in probe.events[0].attributes["exception.message"]  # type: ignore[index]
    assert "4111" not in str(probe.status.description)
