"""A PostgreSQL that stops answering: the API and the gateway answer 503 within seconds instead of hanging.

The database here is this module's own embedded server (the session's is shared), frozen with SIGSTOP
on the postmaster and every backend, and thawed in a `finally` and by a watchdog.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psutil
import pytest

from streamdesk import db
from streamdesk.config import reset_settings
from streamdesk.runtime.embedded import EmbeddedBroker, EmbeddedDatabase, free_port
from tests.api.conftest import OPERATORS, auth
from tests.gateway.conftest import BASE_URL, sign

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.stack

CONNECT_TIMEOUT_S = 2
STATEMENT_TIMEOUT_S = 1.0
WATCHDOG_S = 40.0
"""A frozen server is thawed after this long whatever happens, so a failing run ends."""


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, EmbeddedDatabase]]:
    """The app over this module's own database and broker, with short connect and statement timeouts."""
    tmp = tmp_path_factory.mktemp("outage")
    server = EmbeddedDatabase(tmp / "pg").start()
    broker = EmbeddedBroker(free_port(), tmp / "tansu.log").start()
    try:
        db.migrate(server.url)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DATABASE_URL", server.url)
            mp.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
            mp.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(OPERATORS))
            mp.setenv("STREAMDESK_DATABASE__CONNECT_TIMEOUT_S", str(CONNECT_TIMEOUT_S))
            mp.setenv("STREAMDESK_DATABASE__REQUEST_STATEMENT_TIMEOUT_S", str(STATEMENT_TIMEOUT_S))
            mp.setenv("STREAMDESK_STATE_DIR", str(tmp / "state"))
            reset_settings()
            from streamdesk.api.app import create_app

            with TestClient(create_app(), base_url=BASE_URL) as client:
                yield client, server
    finally:
        reset_settings()
        broker.stop()
        server.stop()


def _server_processes(server: EmbeddedDatabase) -> list[psutil.Process]:
    postmaster = psutil.Process(server.server.get_pid())  # type: ignore[attr-defined]
    return [postmaster, *postmaster.children(recursive=True)]


@contextmanager
def frozen(server: EmbeddedDatabase) -> Iterator[None]:
    """PostgreSQL stopped (SIGSTOP) for the block: connections are accepted by the kernel, nothing answers."""
    processes = _server_processes(server)

    def resume() -> None:
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                process.resume()

    watchdog = threading.Timer(WATCHDOG_S, resume)
    for process in processes:
        process.suspend()
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        resume()


def test_a_frozen_database_gets_a_quick_503_from_every_route(
    outage: tuple[TestClient, EmbeddedDatabase],
) -> None:
    client, server = outage
    body = json.dumps({"type": "zen:event-type:ticket.created", "detail": {"id": "77", "subject": "Hi"}}).encode()
    assert client.get("/tickets", headers=auth("admin")).status_code == 200
    calls = {
        "GET /tickets": lambda: client.get("/tickets", headers=auth("admin")),
        "GET /search": lambda: client.get("/search", params={"q": "refund"}, headers=auth("admin")),
        "GET /audit/verify": lambda: client.get("/audit/verify", headers=auth("auditor")),
        "POST /webhooks/zendesk": lambda: client.post(
            "/webhooks/zendesk", content=body, headers=sign("zendesk", body) | {"Content-Type": "application/json"}
        ),
    }
    with frozen(server):
        for name, call in calls.items():
            started = time.monotonic()
            response = call()
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (name, response.status_code, response.text[:300])
            assert elapsed < CONNECT_TIMEOUT_S + 3, f"{name} took {elapsed:.1f} s with the database frozen"
            assert "database" in response.json()["detail"], (name, response.json())
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
    assert client.get("/tickets", headers=auth("admin")).status_code == 200


def test_a_statement_blocked_by_a_lock_ends_with_503_after_the_statement_timeout(
    outage: tuple[TestClient, EmbeddedDatabase],
) -> None:
    client, server = outage
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        with db.connect(server.url) as conn, conn.transaction():
            conn.execute("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(WATCHDOG_S)

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        response = client.get("/tickets", headers=auth("admin"))
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join(10)
    assert response.status_code == 503, response.text[:300]
    assert response.headers["retry-after"]
    assert "did not finish in time" in response.json()["detail"]
    assert elapsed < STATEMENT_TIMEOUT_S + 3, f"GET /tickets took {elapsed:.1f} s behind the lock"
