"""The FastAPI application: every domain's routes behind one RBAC gate, health, readiness and metrics.

Each domain router carries `api.auth.Gate`, so the policy's `routes:` table decides every request
(a route without a rule is denied). Errors the domains raise on purpose map to 4xx/503 in `api.errors`;
domain request bodies are limited to `ingest.max_body_bytes` (webhooks check their own), and every
response carries the security headers of `api.security`.
"""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from streamdesk import __version__, db
from streamdesk.agent import views as answer_views
from streamdesk.api import errors, metrics
from streamdesk.audit import views as audit_views
from streamdesk.config import Settings, get_settings
from streamdesk.console import views as console_views
from streamdesk.delivery import views as delivery_views
from streamdesk.entities import views as ticket_views
from streamdesk.feedback import views as feedback_views
from streamdesk.gateway import views as gateway
from streamdesk.ingest import views as ingest_views
from streamdesk.policy import service as policy_service
from streamdesk.policy import views as approval_views
from streamdesk.retrieval import views as search_views
from streamdesk.training import views as model_views
from streamdesk.web import deps
from streamdesk.web.auth import Gate
from streamdesk.web.security import SecurityHeadersMiddleware

READY_TIMEOUT_S = 2.0


def check_broker(settings: Settings, *, timeout_s: float = READY_TIMEOUT_S) -> str:
    """'ok' when the broker answers a metadata request, else why not."""
    from confluent_kafka.admin import AdminClient

    if not settings.kafka.bootstrap_servers:
        return "not configured: set KAFKA_BOOTSTRAP_SERVERS"
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception as exc:  # KafkaException carries the transport error
        return f"unreachable at {settings.kafka.bootstrap_servers}: {exc}"
    return "ok"


def check_database(settings: Settings, *, timeout_s: float = READY_TIMEOUT_S) -> str:
    """'ok' when PostgreSQL answers `SELECT 1`, else why not."""
    if not settings.database.url:
        return "not configured: set DATABASE_URL"
    try:
        url = db.libpq_url(db.database_url(settings))
        with psycopg.connect(url, connect_timeout=max(1, round(timeout_s))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"unreachable: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    return "ok"


class Health(BaseModel):
    """Liveness."""

    status: str


class Readiness(BaseModel):
    """Readiness, and what each dependency said."""

    status: str
    checks: dict[str, str]


health = APIRouter(tags=["health"], dependencies=[Gate])


@health.get("/healthz")
def healthz() -> Health:
    """Liveness: the process serves requests."""
    return Health(status="ok")


@health.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the broker and the database are reachable."""
    settings = deps.app_settings(request)
    checks = {
        "broker": await run_in_threadpool(check_broker, settings),
        "database": await run_in_threadpool(check_database, settings),
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "Missing, unknown or expired credentials (see `WWW-Authenticate`)."},
    403: {"description": "The caller's roles may not call this route (policy `routes:`)."},
}


def use_policy(app: FastAPI) -> None:
    """Hand the route gate of `app` the RBAC policy (`policy.service`); `create_app` does, and so can a bare app."""
    app.state.route_policy = policy_service


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application; settings default to the environment (`get_settings()`)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="streamdesk",
        version=__version__,
        lifespan=deps.publisher_lifespan,
        description="Tickets, answers, approvals, feedback, search, audit, models and ingest health, under RBAC.",
    )
    app.state.settings = settings
    app.state.metrics_registry = CollectorRegistry()
    app.state.metrics_registry.register(metrics.DomainCollector())
    app.add_middleware(metrics.MetricsMiddleware, registry=app.state.metrics_registry)
    docs = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=frozenset(path for path in docs if path))
    errors.install(app)
    use_policy(app)
    app.include_router(gateway.router, prefix="/webhooks", dependencies=[Gate])
    app.include_router(health)
    app.include_router(metrics.router)
    for router, prefix in (
        (ticket_views.router, "/tickets"),
        (answer_views.tickets, "/tickets"),
        (answer_views.router, "/answers"),
        (feedback_views.verdicts, "/answers"),
        (approval_views.router, "/approvals"),
        (feedback_views.router, "/feedback"),
        (search_views.router, "/search"),
        (audit_views.router, "/audit"),
        (model_views.router, "/models"),
        (ingest_views.router, "/ingest"),
        (delivery_views.router, "/deliveries"),
    ):
        app.include_router(
            router, prefix=prefix, responses=AUTH_RESPONSES, max_body_size=settings.ingest.max_body_bytes
        )
    app.include_router(console_views.router, prefix="/console")
    app.add_api_route("/", lambda: RedirectResponse("/console/"), include_in_schema=False, response_model=None)
    return app
