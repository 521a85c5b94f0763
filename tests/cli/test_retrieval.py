"""`streamdesk embeddings ...` report as JSON with `--json`, otherwise as tables."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from streamdesk import db
from streamdesk.cli import retrieval as retrieval_cli
from streamdesk.retrieval import vectors

runner = CliRunner()


def test_embeddings_status_json(clean_db: str) -> None:
    result = runner.invoke(retrieval_cli.app, ["embeddings", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert [space["state"] for space in status["spaces"]] == ["active"]
    assert "vector" in status["vector_modes"] and status["shadow_missing"] is None
    table = runner.invoke(retrieval_cli.app, ["embeddings", "status"])
    assert table.exit_code == 0 and "embedding spaces" in table.stdout and "active" in table.stdout


def test_embeddings_index_json_names_the_index(clean_db: str) -> None:
    result = runner.invoke(retrieval_cli.app, ["embeddings", "index", "--mode", "vector", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"mode": "vector", "index": vectors.index_name("vector")}
    with db.connect(clean_db, autocommit=True) as conn:
        assert "vector" in vectors.existing_modes(conn)
