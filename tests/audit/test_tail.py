"""The signed head: a deleted tail (with or without its checkpoints, with or without the head) fails verify."""

from __future__ import annotations

import psycopg
import pytest
from pydantic import SecretStr

from streamdesk.audit import service as audit
from streamdesk.audit.config import AuditSettings
from streamdesk.audit.exceptions import AuditTamperedError
from streamdesk.config import reset_settings
from tests.audit.conftest import event


@pytest.fixture
def every_three(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints after records 3, 6, 9, ..."""
    monkeypatch.setenv("STREAMDESK_AUDIT__CHECKPOINT_EVERY", "3")
    reset_settings()


def test_the_head_follows_every_append(conn: psycopg.Connection, appended) -> None:
    records = appended(4)
    head = conn.execute("SELECT seq, record_hash FROM audit_head").fetchall()
    assert head == [(4, records[-1].record_hash)]
    assert audit.verify(conn).ok


@pytest.mark.parametrize(
    ("checkpoint_every", "n", "statements", "first_broken_seq", "reason"),
    [
        ("3", 8, ["DELETE FROM audit_records WHERE seq > 6"], 7, "tail deleted"),
        (None, 5, ["DELETE FROM audit_records WHERE seq = 5"], 5, "signed head names record 5"),
        (
            "3",
            8,
            ["DELETE FROM audit_records WHERE seq > 4", "DELETE FROM audit_checkpoints WHERE seq > 4"],
            5,
            "tail deleted",
        ),
    ],
    ids=[
        "deleting the records after the last checkpoint is found",
        "deleting the last record alone is found",
        "deleting records and checkpoints together is found",
    ],
)
def test_a_deleted_tail_is_found(
    tampered,
    monkeypatch: pytest.MonkeyPatch,
    checkpoint_every: str | None,
    n: int,
    statements: list[str],
    first_broken_seq: int,
    reason: str,
) -> None:
    if checkpoint_every is not None:
        monkeypatch.setenv("STREAMDESK_AUDIT__CHECKPOINT_EVERY", checkpoint_every)
    report = tampered(n, *statements)
    assert not report.ok and report.first_broken_seq == first_broken_seq and reason in (report.reason or "")


def test_deleting_records_checkpoints_and_the_head_is_found(
    conn: psycopg.Connection, appended, tamper, every_three
) -> None:
    appended(8)
    with tamper(conn):
        conn.execute("DELETE FROM audit_records WHERE seq > 4")
        conn.execute("DELETE FROM audit_checkpoints WHERE seq > 4")
        conn.execute("DELETE FROM audit_head")
    report = audit.verify(conn)
    assert not report.ok and "no signed head" in (report.reason or "")
    with pytest.raises(AuditTamperedError, match="no signed head"):
        audit.append(conn, event=event(n=9))


def test_a_head_moved_back_without_the_key_is_found(conn: psycopg.Connection, appended, tamper) -> None:
    records = appended(5)
    wrong_key = AuditSettings(signing_key=SecretStr("an attacker does not have the real key"))
    forged = audit.sign_head(seq=3, record_hash=records[2].record_hash, settings=wrong_key)
    with tamper(conn):
        conn.execute("DELETE FROM audit_records WHERE seq > 3")
        conn.execute(
            "UPDATE audit_head SET seq = 3, record_hash = %s, signature = %s", (records[2].record_hash, forged)
        )
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 3 and "forged" in (report.reason or "")
    with pytest.raises(AuditTamperedError, match="not signed"):
        audit.append(conn, event=event(n=6))


def test_appends_after_a_deleted_tail_keep_the_gap(conn: psycopg.Connection, appended, tamper) -> None:
    """New records chain onto the signed head, not onto what is left, so the next append cannot hide the deletion."""
    appended(5)
    with tamper(conn):
        conn.execute("DELETE FROM audit_records WHERE seq >= 4")
    assert audit.append(conn, event=event(n=6)).seq == 6
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 4 and "missing" in (report.reason or "")


def test_a_row_inserted_beyond_the_head_is_found(conn: psycopg.Connection, appended, tamper) -> None:
    records = appended(3)
    content = audit.canonical_json(event(n=99).model_dump(mode="json"))
    record_hash = audit.chain_hash(seq=4, prev_hash=records[-1].record_hash, content=content)
    signature = audit.sign(record_hash, settings=AuditSettings())
    conn.execute(
        "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) VALUES (4, %s, %s, %s, %s)",
        (content, records[-1].record_hash, record_hash, signature),
    )
    report = audit.verify(conn)
    assert not report.ok and report.first_broken_seq == 4 and "beyond the signed head" in (report.reason or "")


def test_the_head_only_moves_forward(conn: psycopg.Connection, appended) -> None:
    appended(3)
    with pytest.raises(psycopg.errors.RaiseException, match="only moves forward"):
        conn.execute("UPDATE audit_head SET seq = 2")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM audit_head")
    assert audit.verify(conn).ok


def test_a_trail_from_before_the_head_is_adopted_by_an_explicit_checkpoint(
    conn: psycopg.Connection, appended, tamper
) -> None:
    appended(3)
    with tamper(conn):
        conn.execute("DELETE FROM audit_head")
    assert not audit.verify(conn).ok
    assert audit.checkpoint(conn).seq == 3  # type: ignore[union-attr]
    assert not audit.verify(conn).ok, "a plain checkpoint must not sign a head"
    audit.checkpoint(conn, adopt_head=True)
    assert audit.verify(conn).ok
    assert audit.append(conn, event=event(n=4)).seq == 4 and audit.verify(conn).ok


def test_an_admin_repair_signs_the_end_as_the_head(conn: psycopg.Connection, appended, tamper) -> None:
    """After a deleted tail is investigated, `checkpoint --adopt-head` lets appends go on from what is left."""
    appended(5)
    with tamper(conn):
        conn.execute("DELETE FROM audit_records WHERE seq >= 4")
    assert not audit.verify(conn).ok
    audit.checkpoint(conn, adopt_head=True)
    assert audit.verify(conn).ok and audit.append(conn, event=event(n=6)).seq == 4
    with pytest.raises(psycopg.errors.RaiseException, match="only moves forward"):
        conn.execute("UPDATE audit_head SET seq = 1")
