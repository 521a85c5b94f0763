"""Dependencies the domain routers share: a database connection and the application's one Kafka publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from streamdesk import db
from streamdesk.config import Settings, get_settings
from streamdesk.kafka import Publisher


def app_settings(request: Request) -> Settings:
    """The settings the application was created with (the environment's outside `create_app`)."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


def connection(request: Request) -> Iterator[psycopg.Connection]:
    """An autocommit connection for one request, with the request statement timeout (`db.request_connection`)."""
    with db.request_connection(app_settings(request)) as conn:
        yield conn


@asynccontextmanager
async def publisher_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The application's one publisher: made at startup when a broker is configured, closed at shutdown."""
    settings: Settings = getattr(app.state, "settings", None) or get_settings()
    bootstrap = settings.kafka.bootstrap_servers
    app.state.publisher = Publisher(bootstrap, client_id="streamdesk-api") if bootstrap else None
    try:
        yield
    finally:
        found: Publisher | None = app.state.publisher
        app.state.publisher = None
        if found is not None:
            await run_in_threadpool(found.close, timeout_s=10)


def optional_publisher(request: Request) -> Publisher | None:
    """The application's publisher, or None when no broker is configured (the signal is then only stored)."""
    return getattr(request.app.state, "publisher", None)


def publisher(request: Request) -> Publisher:
    """The application's publisher; 503 when no broker is configured."""
    found = optional_publisher(request)
    if found is None:
        raise HTTPException(503, "no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
    return found


ConnDep = Annotated[psycopg.Connection, Depends(connection)]
PublisherDep = Annotated[Publisher, Depends(publisher)]
OptionalPublisherDep = Annotated[Publisher | None, Depends(optional_publisher)]
