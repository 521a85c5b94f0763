"""The FastAPI application: the webhook gateway at /webhooks, liveness at /healthz, readiness at /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from streamdesk import __version__, db
from streamdesk.config import Settings, get_settings
from streamdesk.feedback import views as feedback_views
from streamdesk.gateway import views as gateway
from streamdesk.policy import views as approval_views

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


def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the broker and the database are reachable."""
    settings: Settings = request.app.state.settings
    checks = {
        "broker": await run_in_threadpool(check_broker, settings),
        "database": await run_in_threadpool(check_database, settings),
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Flush the gateway's publisher on shutdown."""
    yield
    await run_in_threadpool(gateway.close_publisher, app)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application; settings default to the environment (`get_settings()`)."""
    app = FastAPI(title="streamdesk", version=__version__, lifespan=lifespan)
    app.state.settings = settings or get_settings()
    app.include_router(gateway.router, prefix="/webhooks")
    app.include_router(approval_views.router, prefix="/approvals")
    app.include_router(feedback_views.router, prefix="/feedback")
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["health"], response_model=None)
    return app
