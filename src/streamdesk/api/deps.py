"""Dependencies the domain routers share: a database connection and the application's Kafka publisher."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request

from streamdesk import db
from streamdesk.config import Settings, get_settings
from streamdesk.kafka import Publisher

_publisher_lock = threading.Lock()


def app_settings(request: Request) -> Settings:
    """The settings the application was created with (the environment's outside `create_app`)."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


def connection(request: Request) -> Iterator[psycopg.Connection]:
    """An autocommit connection for one request, with the request statement timeout (`db.request_connection`)."""
    with db.request_connection(app_settings(request)) as conn:
        yield conn


def publisher(request: Request) -> Publisher:
    """The application's one API publisher, created on first use; 503 when no broker is configured."""
    bootstrap = app_settings(request).kafka.bootstrap_servers
    if not bootstrap:
        raise HTTPException(503, "no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
    with _publisher_lock:
        found: Publisher | None = getattr(request.app.state, "api_publisher", None)
        if found is None:
            found = Publisher(bootstrap, client_id="streamdesk-api")
            request.app.state.api_publisher = found
        return found


def close_publisher(request_app_state: object) -> None:
    """Flush the API publisher on shutdown, if one was made."""
    found: Publisher | None = getattr(request_app_state, "api_publisher", None)
    if found is not None:
        found.flush(timeout_s=10)


ConnDep = Annotated[psycopg.Connection, Depends(connection)]
PublisherDep = Annotated[Publisher, Depends(publisher)]
