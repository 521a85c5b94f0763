"""The chain: appends link up, verify passes, and every kind of tampering is found at the first broken record."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from pydantic import SecretStr

from streamdesk.audit import service as audit
from streamdesk.audit.config import AuditSettings
from streamdesk.audit.models import GENESIS_HASH
from streamdesk.config import reset_settings
from tests.audit.conftest import event


def test_appends_link_each_record_to_the_previous(conn: psycopg.Connection, appended) -> None:
    records = appended(5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.record_hash for earlier, later in itertools.pairwise(records))
    report = audit.verify(conn)
    assert report.ok and report.checked == 5 and report.first_broken_seq is None


def test_an_empty_chain_verifies(conn: psycopg.Connection) -> None:
    assert audit.verify(conn).ok


def test_a_record_keeps_every_field_it_was_given(conn: psycopg.Connection) -> None:
    stored = audit.append(conn, event=event(n=7))
    (read,) = audit.trail(conn, ticket_id="T-1")
    assert read == stored
    assert read.customer_id == "mei_davis_8935" and read.agent_id == "streamdesk-agent"
    assert read.roles == ["service_agent"] and read.chunk_ids == ["kb:7:0"]
    assert read.access_filter == {"tenant": "default", "levels": ["public"]}
    assert read.model == "SmolLM2-135M-Instruct" and read.adapter_version == "kto-3"
    assert read.prompt_version == "support-v1" and read.trace_id == "a" * 32 and read.span_id == "b" * 16


@pytest.mark.parametrize(
    ("statements", "first_broken_seq", "reason"),
    [
        (
            ["UPDATE audit_records SET content = replace(content, '\"allowed\"', '\"denied\"') WHERE seq = 4"],
            4,
            "changed",
        ),
        (["DELETE FROM audit_records WHERE seq = 3"], 3, "missing"),
        (
            [
                "UPDATE audit_records SET seq = seq + 1000 WHERE seq IN (2, 5)",
                "UPDATE audit_records SET seq = CASE seq WHEN 1002 THEN 5 ELSE 2 END WHERE seq IN (1002, 1005)",
            ],
            2,
            "does not follow",
        ),
        (
            [
                "UPDATE audit_records a SET content = b.content FROM audit_records b "
                "WHERE (a.seq, b.seq) IN ((3, 4), (4, 3))"
            ],
            3,
            "",
        ),
    ],
    ids=[
        "updating a field is found at that record",
        "deleting a row is found at the missing record",
        "swapping two rows is found at the first of them",
        "swapping contents of two rows is found",
    ],
)
def test_tampering_is_found_at_the_first_broken_record(
    tampered, statements: list[str], first_broken_seq: int, reason: str
) -> None:
    report = tampered(6, *statements)
    assert not report.ok and report.first_broken_seq == first_broken_seq and reason in (report.reason or "")


def test_a_forged_row_with_a_naive_hash_is_found(conn: psycopg.Connection, appended) -> None:
    records = appended(4)
    forged = event(n=99).model_dump_json()
    conn.execute(
        "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) VALUES (5, %s, %s, %s, %s)",
        (forged, records[-1].record_hash, "f" * 64, "f" * 64),
    )
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 5 and "changed" in (report.reason or "")


def test_a_forged_row_with_a_correct_hash_fails_without_the_key(conn: psycopg.Connection, appended) -> None:
    records = appended(4)
    content = audit.canonical_json(event(n=99).model_dump(mode="json"))
    record_hash = audit.chain_hash(seq=5, prev_hash=records[-1].record_hash, content=content)
    wrong_key = AuditSettings(signing_key=SecretStr("an attacker does not have the real key"))
    conn.execute(
        "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) VALUES (5, %s, %s, %s, %s)",
        (content, records[-1].record_hash, record_hash, audit.sign(record_hash, settings=wrong_key)),
    )
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 5 and "forged" in (report.reason or "")


def test_a_row_inserted_in_the_middle_is_found(conn: psycopg.Connection, appended, tamper) -> None:
    records = appended(5)
    content = audit.canonical_json(event(n=42).model_dump(mode="json"))
    record_hash = audit.chain_hash(seq=3, prev_hash=records[1].record_hash, content=content)
    with tamper(conn):
        conn.execute("UPDATE audit_records SET seq = seq + 100 WHERE seq >= 3")
        conn.execute("UPDATE audit_records SET seq = seq - 99 WHERE seq >= 103")
        conn.execute(
            "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) VALUES (3, %s, %s, %s, %s)",
            (content, records[1].record_hash, record_hash, audit.sign(record_hash, settings=AuditSettings())),
        )
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 4 and "does not follow" in (report.reason or "")


def test_a_deleted_tail_is_found_through_a_checkpoint(conn: psycopg.Connection, appended, tamper) -> None:
    appended(5)
    assert audit.checkpoint(conn).seq == 5  # type: ignore[union-attr]
    with tamper(conn):
        conn.execute("DELETE FROM audit_records WHERE seq >= 4")
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 4 and "tail deleted" in (report.reason or "")


def test_a_rechained_rewrite_is_found_at_the_checkpoint(conn: psycopg.Connection, appended, tamper) -> None:
    """Even with the signing key, rewriting a checkpointed record and re-chaining the rest shows up."""
    records = appended(4)
    audit.checkpoint(conn)
    settings = AuditSettings()
    prev = records[1].record_hash
    with tamper(conn):
        for seq in (3, 4):
            content = audit.canonical_json(event(n=100 + seq).model_dump(mode="json"))
            record_hash = audit.chain_hash(seq=seq, prev_hash=prev, content=content)
            conn.execute(
                "UPDATE audit_records SET content = %s, prev_hash = %s, record_hash = %s, signature = %s "
                "WHERE seq = %s",
                (content, prev, record_hash, audit.sign(record_hash, settings=settings), seq),
            )
            prev = record_hash
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 4 and "checkpoint" in (report.reason or "")


def test_a_forged_checkpoint_is_found(conn: psycopg.Connection, appended) -> None:
    appended(3)
    conn.execute("INSERT INTO audit_checkpoints (seq, record_hash, signature) VALUES (9, %s, %s)", ("e" * 64, "e" * 64))
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 9 and "checkpoint" in (report.reason or "")


def test_checkpoints_are_taken_every_n_records(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDESK_AUDIT__CHECKPOINT_EVERY", "3")
    reset_settings()
    for n in range(7):
        audit.append(conn, event=event(n=n))
    assert [row[0] for row in conn.execute("SELECT seq FROM audit_checkpoints ORDER BY seq")] == [3, 6]
    assert audit.verify(conn).checkpoints == 2


def test_the_table_refuses_update_and_delete(conn: psycopg.Connection, appended) -> None:
    appended(2)
    audit.checkpoint(conn)
    for statement in ("UPDATE audit_records SET signature = 'x' WHERE seq = 1", "DELETE FROM audit_records"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(statement)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM audit_checkpoints")
    assert audit.verify(conn).checked == 2
