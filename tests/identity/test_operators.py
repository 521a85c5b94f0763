"""Operators stored in the database: the CLI issues, lists and revokes them; tokens are kept only as digests;
the API and the console accept them beside the environment-configured ones and refuse a revoked one at once."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from streamdesk.api.app import create_app
from streamdesk.cli.main import app as cli
from streamdesk.config import get_settings, reset_settings
from streamdesk.identity import operators
from streamdesk.identity import service as identity
from streamdesk.identity.exceptions import OperatorExistsError, UnknownOperatorError
from streamdesk.identity.models import Role
from tests.console.conftest import csrf_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

runner = CliRunner()


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """The CLI's callback points the root logger at the runner's stderr; put the test's handlers back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def api(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The real app (`create_app`) on the test database, no broker, no environment operators."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("STREAMDESK_IDENTITY__OPERATORS", raising=False)
    reset_settings()
    with TestClient(create_app(get_settings()), follow_redirects=False) as client:
        yield client


def add(*args: str) -> str:
    """`streamdesk operators add ...`; the token it prints once."""
    result = runner.invoke(cli, ["operators", "add", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_cli_adds_lists_and_revokes_operators(conn: psycopg.Connection) -> None:
    token = add("alice", "--role", "supervisor", "--role", "auditor", "--group", "billing", "--tenant", "acme")
    assert token.startswith(operators.TOKEN_PREFIX) and len(token) > 40
    assert identity.operator_for_token(token=token).describe() == (
        "user alice roles=['auditor', 'supervisor'] groups=['billing'] (tenant acme)"
    )
    issued = json.loads(runner.invoke(cli, ["operators", "add", "bob", "--role", "viewer", "--json"]).stdout)
    assert issued["operator_id"] == "bob" and issued["token"].startswith(operators.TOKEN_PREFIX)

    listed = runner.invoke(cli, ["operators", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(row["operator_id"], row["source"], row["roles"]) for row in json.loads(listed.stdout)] == [
        ("alice", "database", ["auditor", "supervisor"]),
        ("bob", "database", ["viewer"]),
    ]
    table = runner.invoke(cli, ["operators", "list"])
    assert "alice" in table.stdout and token not in table.output and issued["token"] not in listed.output

    again = runner.invoke(cli, ["operators", "add", "alice", "--role", "admin"])
    assert again.exit_code == 1 and "already exists" in again.output
    agent = runner.invoke(cli, ["operators", "add", "carl", "--role", "service_agent"])
    assert agent.exit_code != 0 and "belongs to the agent" in agent.output

    revoked = runner.invoke(cli, ["operators", "revoke", "alice"])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with pytest.raises(UnknownOperatorError, match="matches no operator"):
        identity.operator_for_token(token=token)
    assert [row["operator_id"] for row in json.loads(runner.invoke(cli, ["operators", "list", "--json"]).stdout)] == [
        "bob"
    ]
    history = json.loads(runner.invoke(cli, ["operators", "list", "--all", "--json"]).stdout)
    assert [(row["operator_id"], row["revoked_at"] is not None) for row in history] == [
        ("alice", True),
        ("bob", False),
    ]
    twice = runner.invoke(cli, ["operators", "revoke", "alice"])
    assert twice.exit_code == 1 and "no live database operator" in twice.output
    reissued = add("alice", "--role", "admin")
    assert identity.operator_for_token(token=reissued).roles == {Role.ADMIN} and reissued != token


def test_tokens_are_stored_only_as_their_sha256(conn: psycopg.Connection) -> None:
    token = add("alice", "--role", "agent")
    rows = conn.execute("SELECT to_jsonb(operators)::text, token_sha256 FROM operators").fetchall()
    assert len(rows) == 1
    whole_row, digest = rows[0]
    assert token not in whole_row and token.removeprefix(operators.TOKEN_PREFIX) not in whole_row
    assert digest == hashlib.sha256(token.encode()).hexdigest()


def test_environment_operators_come_first_and_keep_their_ids(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "STREAMDESK_IDENTITY__OPERATORS", json.dumps({"sam": {"roles": ["supervisor"], "token": "s" * 24}})
    )
    reset_settings()
    with pytest.raises(OperatorExistsError, match="STREAMDESK_IDENTITY__OPERATORS"):
        identity.add_operator(conn, operator_id="sam", roles=[Role.ADMIN])
    token = add("alice", "--role", "agent")
    listed = json.loads(runner.invoke(cli, ["operators", "list", "--json"]).stdout)
    assert [(row["operator_id"], row["source"]) for row in listed] == [("sam", "environment"), ("alice", "database")]
    assert identity.operator(operator_id="alice").roles == {Role.AGENT}
    assert identity.operator_for_token(token="s" * 24).id == "sam" and identity.operator_for_token(token=token).id == (
        "alice"
    )
    refused = runner.invoke(cli, ["operators", "revoke", "sam"])
    assert refused.exit_code == 1 and "remove it there" in refused.output


def test_the_api_accepts_a_stored_token_and_refuses_it_once_revoked(api: TestClient, conn: psycopg.Connection) -> None:
    token = add("sue", "--role", "supervisor")
    assert api.get("/approvals", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.get("/approvals", headers={"X-API-Key": token}).status_code == 200
    assert api.get("/audit/verify", headers={"X-API-Key": token}).status_code == 403
    assert runner.invoke(cli, ["operators", "revoke", "sue"]).exit_code == 0
    refused = api.get("/approvals", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "matches no operator" in refused.json()["detail"]
    assert api.get("/approvals", headers={"X-API-Key": token}).status_code == 401


def test_the_console_signs_in_a_stored_operator_and_ends_the_sign_in_at_revocation(
    api: TestClient, conn: psycopg.Connection
) -> None:
    token = add("sue", "--role", "supervisor")
    login = api.get("/console/login")
    signed = api.post("/console/login", data={"token": token, "csrf_token": csrf_of(login.text)})
    assert signed.status_code == 303, signed.text
    landing = api.get(signed.headers["location"], follow_redirects=True)
    assert "Signed in as sue" in landing.text and token not in landing.text
    assert api.get("/console/approvals").status_code == 200
    assert runner.invoke(cli, ["operators", "revoke", "sue"]).exit_code == 0
    assert api.get("/console/approvals").headers["location"] == "/console/login?next=/console/approvals"
    reissued = add("sue", "--role", "supervisor")
    assert reissued != token
    assert api.get("/console/approvals").status_code == 303, "a new token for the same id is not the old sign-in"
