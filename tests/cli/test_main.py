"""`streamdesk` reporting commands: `--json` prints one JSON value on stdout, otherwise a table."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdesk.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """The app's callback points the root logger at the runner's stderr; put the test's handlers back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_topics_list_json_is_the_registry() -> None:
    result = runner.invoke(app, ["topics", "list", "--json"])
    assert result.exit_code == 0, result.output
    registry = json.loads(result.stdout)
    assert registry["raw.mapped"]["schema"] and "partitions" in registry["canonical.document"]
    assert registry["canonical.document"]["max_message_bytes"] < registry["raw.mapped"]["max_message_bytes"]
    table = runner.invoke(app, ["topics", "list"])
    assert table.exit_code == 0 and "raw.mapped" in table.stdout


def test_status_json_counts_the_store(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts and all(value == 0 for value in counts.values() if isinstance(value, int))
    assert "streamdesk status" in runner.invoke(app, ["status"]).stdout


def test_topics_create_replay_and_status_report_json(clean_db: str, broker: str, shared_data: Path) -> None:
    created = runner.invoke(app, ["topics", "create", "--json"])
    assert created.exit_code == 0, created.output
    assert "raw.mapped" in json.loads(created.stdout)["created"]
    again = runner.invoke(app, ["topics", "create", "--json"])
    assert json.loads(again.stdout) == {"created": []}

    replayed = runner.invoke(
        app, ["replay", "--what", "knowledge", "--limit", "2", "--shared-data", str(shared_data), "--json"]
    )
    assert replayed.exit_code == 0, replayed.output
    summary = json.loads(replayed.stdout)
    assert summary["total"] == sum(summary["counts"].values()) > 0

    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert isinstance(json.loads(status.stdout)["lag"], dict)
