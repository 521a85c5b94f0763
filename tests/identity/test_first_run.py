"""The first admin: created once when no operator exists, its token kept 0600 in the state directory."""

from __future__ import annotations

import json
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from streamdesk import db
from streamdesk.cli.main import app as cli
from streamdesk.config import reset_settings
from streamdesk.identity import first_run, operators
from streamdesk.identity import service as identity
from streamdesk.identity.first_run import FirstAdmin
from streamdesk.identity.models import Role

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_environment_operators(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No operator in the environment; the CLI's logging set-up undone after the test."""
    monkeypatch.delenv("STREAMDESK_IDENTITY__OPERATORS", raising=False)
    reset_settings()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def ensure(url: str, state_dir: Path) -> FirstAdmin | None:
    with db.transaction(url) as conn:
        return first_run.ensure_first_admin(conn, state_dir=state_dir)


def test_the_first_admin_is_created_once_and_its_token_kept_private(clean_db: str, tmp_path: Path) -> None:
    created = ensure(clean_db, tmp_path)
    assert created is not None and created.token is not None and created.operator_id == "admin"
    path = tmp_path / first_run.TOKEN_FILE
    assert created.token_path == path and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == created.token
    assert created.token in created.describe()
    admin = identity.operator_for_token(token=created.token)
    assert admin.id == "admin" and admin.roles == {Role.ADMIN}

    later = ensure(clean_db, tmp_path)
    assert later == FirstAdmin(operator_id="admin", token_path=path)
    assert created.token not in later.describe() and str(path) in later.describe()
    with db.connect(clean_db) as conn:
        assert len(operators.list_stored(conn, include_revoked=True)) == 1
        operators.revoke(conn, operator_id="admin")
        conn.commit()
    revoked = ensure(clean_db, tmp_path)
    assert revoked is not None and not revoked.valid and "revoked" in revoked.describe()
    with db.connect(clean_db) as conn:
        assert len(operators.list_stored(conn, include_revoked=True)) == 1, "a revoked admin is not re-created"


def test_two_starts_at_once_create_one_admin(clean_db: str, tmp_path: Path) -> None:
    outcomes: list[FirstAdmin | None] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        outcomes.append(ensure(clean_db, tmp_path))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 4 and sum(1 for o in outcomes if o is not None and o.token is not None) == 1
    with db.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM operators").fetchone() == (1,)
    token = next(o.token for o in outcomes if o is not None and o.token)
    assert (tmp_path / first_run.TOKEN_FILE).read_text().strip() == token


def test_no_first_admin_when_operators_exist(
    conn: psycopg.Connection, clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps({"sam": {"roles": ["supervisor"]}}))
    reset_settings()
    assert ensure(clean_db, tmp_path) is None
    monkeypatch.delenv("STREAMDESK_IDENTITY__OPERATORS")
    reset_settings()
    operators.add(conn, operator_id="alice", roles=[Role.AGENT])
    assert ensure(clean_db, tmp_path) is None and not (tmp_path / first_run.TOKEN_FILE).exists()


def test_the_first_run_command_is_what_deployments_run(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMDESK_STATE_DIR", str(tmp_path))
    reset_settings()
    first = runner.invoke(cli, ["operators", "first-run"])
    assert first.exit_code == 0, first.output
    token = (tmp_path / first_run.TOKEN_FILE).read_text().strip()
    assert token in first.output
    second = runner.invoke(cli, ["operators", "first-run"])
    assert second.exit_code == 0 and token not in second.output and first_run.TOKEN_FILE in second.output
