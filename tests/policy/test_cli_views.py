"""Supervisors decide from the shell (`streamdesk approvals ...`) and over HTTP (/approvals, bearer token)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from streamdesk.api import errors
from streamdesk.api.app import use_policy
from streamdesk.audit import service as audit
from streamdesk.config import reset_settings
from streamdesk.identity.models import Role
from streamdesk.policy import approvals
from streamdesk.policy import views as approval_views
from streamdesk.policy.cli import approvals_app
from streamdesk.policy.models import PendingAction
from tests.policy.conftest import ORDER, TICKET, principal_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

runner = CliRunner()
OPERATORS = {
    "sam": {"roles": ["supervisor"], "token": "sam-token-0123456789"},
    "vic": {"roles": ["viewer"], "token": "vic-token-0123456789"},
    "ada": {"roles": ["auditor"], "token": "ada-token-0123456789"},
}


@pytest.fixture
def operators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(OPERATORS))
    reset_settings()


@pytest.fixture
def pending(conn: psycopg.Connection) -> PendingAction:
    return approvals.propose(
        conn,
        ticket_id=TICKET,
        tool_name="cancel_pending_order",
        arguments={"order_id": ORDER, "reason": "no longer needed"},
        principal=principal_for(Role.SERVICE_AGENT),
        idempotency_key="cli-key",
    )


@pytest.fixture
def client(clean_db: str, operators: None) -> Iterator[TestClient]:
    app = FastAPI()
    errors.install(app)
    use_policy(app)
    app.include_router(approval_views.router, prefix="/approvals")
    with TestClient(app) as test_client:
        yield test_client


def test_cli_lists_and_approves(conn: psycopg.Connection, operators: None, pending: PendingAction) -> None:
    listed = runner.invoke(approvals_app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [action["id"] for action in json.loads(listed.stdout)] == [pending.id]
    assert runner.invoke(approvals_app, ["list"]).exit_code == 0
    result = runner.invoke(
        approvals_app, ["approve", pending.id, "--as", "sam", "--note", "confirmed by phone", "--json"]
    )
    assert result.exit_code == 0, result.output
    decided = json.loads(result.stdout)
    assert (decided["id"], decided["status"], decided["decided_by"]) == (pending.id, "approved", "sam")
    assert json.loads(runner.invoke(approvals_app, ["list", "--status", "approved", "--json"]).stdout)[0]["id"] == (
        pending.id
    )
    assert approvals.get_action(conn, action_id=pending.id).decided_by == "sam"
    assert audit.trail(conn, ticket_id=TICKET)[-1].reason == "confirmed by phone"


def test_cli_refuses_viewers_and_unknown_operators(
    conn: psycopg.Connection, operators: None, pending: PendingAction
) -> None:
    viewer = runner.invoke(approvals_app, ["reject", pending.id, "--as", "vic"])
    assert viewer.exit_code == 1 and "refused" in viewer.output
    stranger = runner.invoke(approvals_app, ["approve", pending.id, "--as", "mallory"])
    assert stranger.exit_code == 1 and "not configured" in stranger.output
    assert approvals.get_action(conn, action_id=pending.id).status == "pending"
    assert audit.trail(conn, ticket_id=TICKET)[-1].decision == "denied"


def test_cli_rejects(conn: psycopg.Connection, operators: None, pending: PendingAction) -> None:
    result = runner.invoke(approvals_app, ["reject", pending.id, "--as", "sam"])
    assert result.exit_code == 0 and "now rejected" in result.output


def test_api_needs_a_known_bearer_token(client: TestClient, pending: PendingAction) -> None:
    assert client.get("/approvals").status_code == 401
    assert client.get("/approvals", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/approvals", headers={"Authorization": "Bearer vic-token-0123456789"}).status_code == 403
    listed = client.get("/approvals", headers={"Authorization": "Bearer ada-token-0123456789"})
    assert listed.status_code == 200 and [a["id"] for a in listed.json()] == [pending.id]


def test_api_approves_and_maps_refusals_to_statuses(client: TestClient, pending: PendingAction) -> None:
    sam = {"Authorization": "Bearer sam-token-0123456789"}
    vic = {"Authorization": "Bearer vic-token-0123456789"}
    assert client.post(f"/approvals/{pending.id}/approve", headers=vic).status_code == 403
    approved = client.post(f"/approvals/{pending.id}/approve", headers=sam, json={"note": "ok"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert client.post(f"/approvals/{pending.id}/reject", headers=sam).status_code == 409
    assert client.post("/approvals/not-an-id/approve", headers=sam).status_code == 404
