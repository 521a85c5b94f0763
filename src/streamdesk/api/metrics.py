"""/metrics in Prometheus text format: requests and latency per route and status, and domain gauges.

Each application gets its own registry (tests build many apps). Domain gauges are read from the
database at scrape time; when it is unreachable, `streamdesk_database_up` is 0 and they are left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamdesk import db
from streamdesk.exceptions import ConfigurationError
from streamdesk.web.auth import Gate, route_template

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"], dependencies=[Gate])
UNMATCHED = "unmatched"
"""Route label of requests no rule names (unknown paths), so random paths cannot blow up the label set."""

_DOMAIN_SQL = """
SELECT
  (SELECT count(*) FROM tickets),
  (SELECT count(*) FROM pending_actions WHERE status = 'pending'),
  (SELECT count(*) FROM dead_letters),
  (SELECT count(*) FROM feedback),
  (SELECT coalesce(max(seq), 0) FROM audit_records),
  (SELECT count(*) FROM training_examples WHERE trained_in IS NULL AND NOT heldout)
"""


class DomainCollector(Collector):
    """Gauges read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("streamdesk_database_up", "1 when the database answered the metrics queries.")
        try:
            with db.request_connection() as conn:
                counts = conn.execute(_DOMAIN_SQL).fetchone()
                answers = conn.execute("SELECT status, count(*) FROM answers GROUP BY status").fetchall()
        except (psycopg.Error, OSError, ConfigurationError) as exc:
            log.warning("metrics: database unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        assert counts is not None
        names = (
            ("streamdesk_tickets", "Tickets in the store."),
            ("streamdesk_pending_approvals", "Actions waiting for a supervisor's decision."),
            ("streamdesk_dead_letters", "Messages dead-lettered by the workers."),
            ("streamdesk_feedback_signals", "Feedback signals stored."),
            ("streamdesk_audit_records", "Records in the audit chain."),
            ("streamdesk_untrained_examples", "Labelled examples a retrain would add."),
        )
        for (name, help_text), value in zip(names, counts, strict=True):
            yield GaugeMetricFamily(name, help_text, value=float(value))
        by_status = GaugeMetricFamily("streamdesk_answers", "Answers by status.", labels=["status"])
        for status, count in answers:
            by_status.add_metric([status], float(count))
        yield by_status


class MetricsMiddleware:
    """Counts requests and times them, labelled by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "streamdesk_http_requests", "HTTP requests served.", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "streamdesk_http_request_duration_seconds",
            "Time to serve an HTTP request.",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope) or UNMATCHED
            method = scope["method"]
            label = route.partition(" ")[2] if route != UNMATCHED else route
            self.requests.labels(method, label, str(status)).inc()
            self.latency.labels(method, label).observe(time.perf_counter() - started)


def registry_for(request: Request) -> CollectorRegistry:
    """The application's metrics registry."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return registry


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text exposition of the request and domain metrics."""
    return Response(generate_latest(registry_for(request)), media_type=CONTENT_TYPE_LATEST)
