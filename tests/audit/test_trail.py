"""Reading the trail back: per ticket, as JSON lines, through the CLI, and against the audit.v1 contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from streamdesk import contracts
from streamdesk.audit import service as audit
from streamdesk.audit.cli import audit_app
from streamdesk.audit.models import AuditAction, AuditRecord
from streamdesk.config import get_settings
from tests.audit.conftest import event, tampering

runner = CliRunner()


def test_trail_holds_only_that_ticket_in_chain_order(conn: psycopg.Connection, appended) -> None:
    appended(6)
    trail = audit.trail(conn, ticket_id="T-2")
    assert [r.seq for r in trail] == [2, 4, 6]
    assert {r.ticket_id for r in trail} == {"T-2"}
    assert audit.trail(conn, ticket_id="nope") == []


def test_export_writes_one_json_line_per_record(conn: psycopg.Connection, appended) -> None:
    appended(5)
    out = io.StringIO()
    assert audit.export(conn, out=out) == 5
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    out = io.StringIO()
    assert audit.export(conn, out=out, ticket_id="T-1") == 3


def test_every_record_matches_the_audit_contract(conn: psycopg.Connection, appended) -> None:
    for record in appended(3):
        contracts.validate("audit.v1.json", record.to_json())


def test_exported_records_can_be_verified_without_the_database(conn: psycopg.Connection, appended) -> None:
    appended(4)
    out = io.StringIO()
    audit.export(conn, out=out)
    records = [AuditRecord.model_validate_json(line) for line in out.getvalue().splitlines()]
    assert all(audit.expected_hash(r) == r.record_hash for r in records)
    assert [r.prev_hash for r in records[1:]] == [r.record_hash for r in records[:-1]]


def test_cli_show_prints_the_ticket_trail(clean_db: str, conn: psycopg.Connection, appended) -> None:
    appended(4)
    result = runner.invoke(audit_app, ["show", "--ticket", "T-1", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert [r["seq"] for r in shown] == [1, 3]
    table = runner.invoke(audit_app, ["show", "--ticket", "T-1"])
    assert table.exit_code == 0 and "audit trail of ticket T-1" in table.stdout
    assert runner.invoke(audit_app, ["show", "--ticket", "none"]).exit_code == 1


def test_cli_verify_exits_1_naming_the_first_broken_record(clean_db: str, conn: psycopg.Connection, appended) -> None:
    appended(4)
    ok = runner.invoke(audit_app, ["verify"])
    assert ok.exit_code == 0 and "intact: 4 records" in ok.output
    with tampering(conn):
        conn.execute("DELETE FROM audit_records WHERE seq = 2")
    broken = runner.invoke(audit_app, ["verify", "--json"])
    assert broken.exit_code == 1
    assert "BROKEN at record 2" in broken.output
    assert json.loads(broken.stdout)["first_broken_seq"] == 2


def test_cli_export_writes_a_file(clean_db: str, conn: psycopg.Connection, appended, tmp_path: Path) -> None:
    appended(3)
    target = tmp_path / "audit.jsonl"
    result = runner.invoke(audit_app, ["export", "--ticket", "T-1", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in target.read_text().splitlines()] == [1, 3]


def test_cli_checkpoint_stores_the_head(clean_db: str, conn: psycopg.Connection, appended) -> None:
    appended(2)
    result = runner.invoke(audit_app, ["checkpoint"])
    assert result.exit_code == 0 and "checkpoint at record 2" in result.output
    assert audit.verify(conn).checkpoints == 1
    as_json = runner.invoke(audit_app, ["checkpoint", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["seq"] == 2


def test_cli_checkpoint_json_on_an_empty_chain(clean_db: str) -> None:
    result = runner.invoke(audit_app, ["checkpoint", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"seq": None, "record_hash": None}


def test_the_audit_contract_and_the_record_have_the_same_fields() -> None:
    schema = json.loads((get_settings().schemas_dir / "audit.v1.json").read_text())
    assert set(AuditRecord.model_fields) == set(schema["properties"])
    required = {name for name, field in AuditRecord.model_fields.items() if field.is_required()}
    assert required <= set(schema["required"])
    assert set(schema["properties"]["action"]["enum"]) == {action.value for action in AuditAction}


def test_every_read_can_be_scoped_to_one_tenant(conn: psycopg.Connection) -> None:
    for n in range(4):
        tenant = "acme" if n % 2 else "default"
        audit.append(conn, event=event("T-1", n=n).model_copy(update={"tenant": tenant}))
    assert [r.seq for r in audit.trail(conn, ticket_id="T-1", tenant="acme")] == [2, 4]
    assert [r.seq for r in audit.records_after(conn, after_seq=0, tenant="default")] == [1, 3]
    assert [r.seq for r in audit.recent(conn, tenant="acme", limit=1)] == [4]
    out = io.StringIO()
    assert audit.export(conn, out=out, tenant="acme") == 2
    assert {json.loads(line)["tenant"] for line in out.getvalue().splitlines()} == {"acme"}
    assert len(audit.trail(conn, ticket_id="T-1")) == 4
