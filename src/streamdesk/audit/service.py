"""Append to, checkpoint, verify, read and export the hash-chained audit trail.

Each record stores the canonical JSON of its content (sorted keys, no spaces) byte for byte. Its hash
is sha256 over `seq`, the previous record's hash and that JSON, so changing, removing, reordering or
inserting a record breaks the chain; the hash is also signed with HMAC-SHA256 under the audit key, so
a row forged with a correctly recomputed hash still fails without the key. Checkpoints (signed
`(seq, hash)` pairs) catch rewrites that re-chain every later record, and the signed head (the last
record's `(seq, hash)`, moved in the same transaction as every append) catches a deleted tail: records
after the last checkpoint, the last record alone, or records and checkpoints together.

Free text (tool arguments, reasons, details) is redacted of PII by the guardrails before it is hashed
and stored, so a card number in a ticket never enters the append-only trail. Reads take a `tenant`:
the API and the console pass the caller's, so one tenant never sees another's records.

The database refuses UPDATE and DELETE on the audit tables (migration 0004's trigger) unless the
session sets `streamdesk.audit_maintenance = 'on'`, which only tests and admin repair tools do;
whatever is changed that way, or by a table owner who drops the trigger, `verify` still finds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any, TextIO

import psycopg

from streamdesk import db
from streamdesk.audit.config import AuditSettings, get_audit_settings
from streamdesk.audit.exceptions import AuditTamperedError, CorruptAuditRecordError
from streamdesk.audit.models import (
    GENESIS_HASH,
    REDACTED_FIELDS,
    AuditContent,
    AuditEvent,
    AuditRecord,
    Checkpoint,
    VerifyReport,
)
from streamdesk.contracts import utcnow
from streamdesk.guardrails import service as guardrails

AUDIT_LOCK = 0x5D0A0D17
CHANNEL = "audit_appended"
"""The LISTEN/NOTIFY channel that wakes the audit relay when a record commits."""
"""Advisory lock key that serialises appends and checkpoints."""

_LAST = "SELECT seq, record_hash FROM audit_records ORDER BY seq DESC LIMIT 1"
_INSERT = "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) VALUES (%s, %s, %s, %s, %s)"
_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (seq, record_hash, signature) VALUES (%s, %s, %s) ON CONFLICT (seq) DO NOTHING"
)
_HEAD = "SELECT seq, record_hash, signature FROM audit_head WHERE id = 1"
_MOVE_HEAD = (
    "INSERT INTO audit_head (id, seq, record_hash, signature) VALUES (1, %s, %s, %s) ON CONFLICT (id) DO UPDATE "
    "SET seq = EXCLUDED.seq, record_hash = EXCLUDED.record_hash, signature = EXCLUDED.signature, updated_at = now()"
)
_COLUMNS = "seq, content, prev_hash, record_hash, signature"
REPAIR = "run `streamdesk audit verify`, then (once investigated) `streamdesk audit checkpoint --adopt-head`"
"""What an admin does about a tampered trail: see what broke, then sign the chain's end as its head."""


def canonical_json(value: Any) -> str:
    """The one JSON text of `value`: sorted keys, no spaces, UTF-8 kept, NaN refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value`; use it for a tool result's `result_hash`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def chain_hash(*, seq: int, prev_hash: str, content: str) -> str:
    """The hash that binds a record's content to its place in the chain."""
    return hashlib.sha256(f"{seq}\n{prev_hash}\n{content}".encode()).hexdigest()


def expected_hash(record: AuditRecord) -> str:
    """The hash a record must carry, recomputed from its fields (use it to verify exported or published records)."""
    return chain_hash(seq=record.seq, prev_hash=record.prev_hash, content=canonical_json(record.content()))


def sign(record_hash: str, *, settings: AuditSettings) -> str:
    """HMAC-SHA256 of a record hash under the audit signing key."""
    key = settings.signing_key.get_secret_value().encode()
    return hmac.new(key, record_hash.encode(), hashlib.sha256).hexdigest()


def sign_checkpoint(*, seq: int, record_hash: str, settings: AuditSettings) -> str:
    """HMAC-SHA256 of a checkpoint, domain-separated from record signatures."""
    return sign(f"checkpoint:{seq}:{record_hash}", settings=settings)


def sign_head(*, seq: int, record_hash: str, settings: AuditSettings) -> str:
    """HMAC-SHA256 of the chain's head, domain-separated from records and checkpoints."""
    return sign(f"head:{seq}:{record_hash}", settings=settings)


def _head_signed(head: tuple[Any, ...], *, settings: AuditSettings) -> bool:
    seq, record_hash, signature = head
    return hmac.compare_digest(sign_head(seq=seq, record_hash=record_hash, settings=settings), signature)


def _next_position(conn: psycopg.Connection, *, settings: AuditSettings) -> tuple[int, str]:
    """(seq, prev_hash) of the next record: after the signed head, so a deleted tail stays a visible gap."""
    head = conn.execute(_HEAD).fetchone()
    last = conn.execute(_LAST).fetchone()
    if head is None:
        if last is not None:
            raise AuditTamperedError(
                f"the audit trail has records up to {last[0]} but no signed head (deleted, or the trail predates "
                f"migration 0010); {REPAIR}"
            )
        return 1, GENESIS_HASH
    if not _head_signed(head, settings=settings):
        raise AuditTamperedError(
            f"the audit trail's head (record {head[0]}) is not signed with the audit key: it was tampered with or "
            f"STREAMDESK_AUDIT__SIGNING_KEY changed; {REPAIR}"
        )
    if last is not None and last[0] > head[0]:
        raise AuditTamperedError(
            f"the audit trail has records up to {last[0]} beyond its signed head (record {head[0]}): rows were "
            f"inserted outside the audit service; {REPAIR}"
        )
    return head[0] + 1, head[1]


def redact_event(event: AuditEvent) -> dict[str, Any]:
    """The event as JSON with PII redacted from its free-text fields (what the trail stores)."""
    fields = event.model_dump(mode="json")
    for name in REDACTED_FIELDS:
        fields[name] = guardrails.redact_json(fields[name])
    return fields


def _locked(conn: psycopg.Connection) -> Any:
    """A transaction when the connection autocommits; otherwise the caller's, which the lock then spans."""
    return conn.transaction() if conn.autocommit else nullcontext()


def append(conn: psycopg.Connection, *, event: AuditEvent, settings: AuditSettings | None = None) -> AuditRecord:
    """Append one event (PII redacted) to the chain and move the signed head, under an advisory lock.

    The record commits with the caller's transaction, which then wakes the audit relay. AuditTamperedError
    when the head is missing, forged or behind the records: the trail was tampered with and nothing is
    chained onto it.
    """
    settings = settings or get_audit_settings()
    with _locked(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
        seq, prev_hash = _next_position(conn, settings=settings)
        content = canonical_json(AuditContent(**redact_event(event), recorded_at=utcnow()).model_dump(mode="json"))
        record_hash = chain_hash(seq=seq, prev_hash=prev_hash, content=content)
        signature = sign(record_hash, settings=settings)
        conn.execute(_INSERT, (seq, content, prev_hash, record_hash, signature))
        conn.execute(_MOVE_HEAD, (seq, record_hash, sign_head(seq=seq, record_hash=record_hash, settings=settings)))
        conn.execute(f"NOTIFY {CHANNEL}")  # delivered when the record commits
        if seq % settings.checkpoint_every == 0:
            checkpoint_signature = sign_checkpoint(seq=seq, record_hash=record_hash, settings=settings)
            conn.execute(_INSERT_CHECKPOINT, (seq, record_hash, checkpoint_signature))
    return AuditRecord.from_row(
        seq=seq, content=content, prev_hash=prev_hash, record_hash=record_hash, signature=signature
    )


def checkpoint(
    conn: psycopg.Connection, *, adopt_head: bool = False, settings: AuditSettings | None = None
) -> Checkpoint | None:
    """Store a signed checkpoint of the chain's last record now; None when the chain is empty.

    `adopt_head` (an admin's repair) also signs that record as the head when the head is missing, forged
    or names another record: a trail that predates migration 0010, or one found tampered with. Verify
    and investigate first: whatever was deleted before this is no longer reported afterwards.
    """
    settings = settings or get_audit_settings()
    with _locked(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
        last = conn.execute(_LAST).fetchone()
        if last is None:
            return None
        seq, record_hash = last
        signature = sign_checkpoint(seq=seq, record_hash=record_hash, settings=settings)
        conn.execute(_INSERT_CHECKPOINT, (seq, record_hash, signature))
        head_signature = sign_head(seq=seq, record_hash=record_hash, settings=settings)
        if adopt_head and conn.execute(_HEAD).fetchone() != (seq, record_hash, head_signature):
            conn.execute("SELECT set_config('streamdesk.audit_maintenance', 'on', true)")
            conn.execute(_MOVE_HEAD, (seq, record_hash, head_signature))
            conn.execute("SELECT set_config('streamdesk.audit_maintenance', 'off', true)")
    return Checkpoint(seq=seq, record_hash=record_hash)


def _select(
    conn: psycopg.Connection,
    *,
    limit: int,
    after_seq: int = 0,
    ticket_id: str | None = None,
    tenant: str | None = None,
    newest_first: bool = False,
) -> list[tuple[Any, ...]]:
    """The one query of every read: up to `limit` rows after `after_seq`, of one ticket and one tenant when given."""
    where, params = db.equal_to(ticket_id=ticket_id, tenant=tenant)
    order = "seq DESC" if newest_first else "seq"
    query = f"SELECT {_COLUMNS} FROM audit_records WHERE seq > %s AND {where} ORDER BY {order} LIMIT %s"
    return conn.execute(query, (after_seq, *params, limit)).fetchall()


def _rows(
    conn: psycopg.Connection, *, batch: int, ticket_id: str | None = None, tenant: str | None = None
) -> Iterator[tuple[Any, ...]]:
    """Stored rows (of one ticket, of one tenant) in seq order, read in batches."""
    after = 0
    while True:
        rows = _select(conn, limit=batch, after_seq=after, ticket_id=ticket_id, tenant=tenant)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


def _record(row: tuple[Any, ...]) -> AuditRecord:
    seq, content, prev_hash, record_hash, signature = row
    try:
        return AuditRecord.from_row(
            seq=seq, content=content, prev_hash=prev_hash, record_hash=record_hash, signature=signature
        )
    except (ValueError, TypeError) as exc:
        raise CorruptAuditRecordError(
            f"audit record {seq} does not parse ({exc}); run `streamdesk audit verify` to see what was changed"
        ) from None


def _checkpoints(conn: psycopg.Connection, *, settings: AuditSettings) -> tuple[dict[int, str], int | None]:
    """Checkpoint hashes by seq, and the seq of the first checkpoint whose signature is not ours."""
    stored: dict[int, str] = {}
    for seq, record_hash, signature in conn.execute(
        "SELECT seq, record_hash, signature FROM audit_checkpoints ORDER BY seq"
    ):
        if not hmac.compare_digest(sign_checkpoint(seq=seq, record_hash=record_hash, settings=settings), signature):
            return stored, seq
        stored[seq] = record_hash
    return stored, None


def _record_problem(
    row: tuple[Any, ...], *, expected: int, prev: str, checkpoints: dict[int, str], settings: AuditSettings
) -> tuple[int, str] | None:
    """(seq, reason) of what is wrong with one stored row, given the chain so far; None when it is sound."""
    seq, content, prev_hash, record_hash, signature = row
    if seq != expected:
        return expected, (
            f"record {expected} is missing: the chain jumps from record {expected - 1} to record {seq} "
            "(deleted or renumbered)"
        )
    if prev_hash != prev:
        return seq, (
            f"record {seq} does not follow record {seq - 1}: its prev_hash differs from that record's hash "
            "(records reordered, inserted or removed)"
        )
    if chain_hash(seq=seq, prev_hash=prev_hash, content=content) != record_hash:
        return seq, f"record {seq} was changed: its content no longer matches its record_hash"
    if not hmac.compare_digest(sign(record_hash, settings=settings), signature):
        return seq, f"record {seq} is forged: its signature was not made with the audit key"
    if seq in checkpoints and checkpoints[seq] != record_hash:
        return seq, (
            f"record {seq} differs from the checkpoint taken at that record: the chain was rewritten "
            "from here or earlier"
        )
    return None


def _head_problem(
    head: tuple[Any, ...] | None, *, end: int, end_hash: str, settings: AuditSettings
) -> tuple[int, str] | None:
    """(seq, reason) of a disagreement between the chain's end (`end`, 0 when empty) and its signed head."""
    if head is None:
        if end == 0:
            return None
        return end + 1, (
            f"the chain has no signed head record: it was deleted, which hides a deleted tail after record {end} "
            "(or the trail predates migration 0010: run `streamdesk audit checkpoint --adopt-head` once)"
        )
    seq, record_hash, _ = head
    if not _head_signed(head, settings=settings):
        return seq, f"the head naming record {seq} is forged: its signature was not made with the audit key"
    if seq > end:
        return end + 1, (
            f"record {end + 1} is missing: the signed head names record {seq} but the chain ends at record {end} "
            "(tail deleted)"
        )
    if seq < end:
        return (
            seq + 1,
            f"record {seq + 1} is beyond the signed head (record {seq}): it was not appended by the audit trail",
        )
    if record_hash != end_hash:
        return seq, f"record {seq} differs from the signed head: the chain's end was rewritten"
    return None


def verify(conn: psycopg.Connection, *, settings: AuditSettings | None = None) -> VerifyReport:
    """Walk the whole chain, the checkpoints and the signed head; report the first record changed, removed or forged.

    The report names records by seq and says what broke; it carries no record content.
    """
    settings = settings or get_audit_settings()
    head = conn.execute(_HEAD).fetchone()
    checkpoints, forged = _checkpoints(conn, settings=settings)
    expected, prev, checked = 1, GENESIS_HASH, 0
    problem: tuple[int, str] | None = None
    for row in _rows(conn, batch=settings.verify_batch):
        if forged is not None and forged < row[0]:
            break
        problem = _record_problem(row, expected=expected, prev=prev, checkpoints=checkpoints, settings=settings)
        if problem is not None:
            break
        prev, expected, checked = row[3], expected + 1, checked + 1
    if problem is None and forged is not None:
        problem = forged, f"the checkpoint at record {forged} is forged: its signature was not made with the audit key"
    beyond = [seq for seq in checkpoints if seq >= expected]
    if problem is None and beyond:
        problem = (
            expected,
            (
                f"record {expected} is missing: a checkpoint names record {min(beyond)} but the chain ends at "
                f"record {expected - 1} (tail deleted)"
            ),
        )
    if problem is None:
        problem = _head_problem(head, end=expected - 1, end_hash=prev, settings=settings)
    if problem is not None:
        return VerifyReport(False, checked, len(checkpoints), first_broken_seq=problem[0], reason=problem[1])
    return VerifyReport(ok=True, checked=checked, checkpoints=len(checkpoints))


def trail(conn: psycopg.Connection, *, ticket_id: str, tenant: str | None = None) -> list[AuditRecord]:
    """Every record of one ticket (only `tenant`'s when given), in chain order."""
    rows = _rows(conn, batch=get_audit_settings().verify_batch, ticket_id=ticket_id, tenant=tenant)
    return [_record(row) for row in rows]


def last_seq(conn: psycopg.Connection) -> int:
    """The seq of the chain's last record (0 when the chain is empty)."""
    row = conn.execute(_LAST).fetchone()
    return int(row[0]) if row else 0


def records_after(
    conn: psycopg.Connection, *, after_seq: int, limit: int = 1000, tenant: str | None = None
) -> list[AuditRecord]:
    """Up to `limit` records (only `tenant`'s when given) with seq greater than `after_seq`, in chain order."""
    return [_record(row) for row in _select(conn, limit=limit, after_seq=after_seq, tenant=tenant)]


def recent(conn: psycopg.Connection, *, tenant: str, limit: int = 25) -> list[AuditRecord]:
    """The latest `limit` records of `tenant`, newest first."""
    return [_record(row) for row in _select(conn, limit=limit, tenant=tenant, newest_first=True)]


def export(conn: psycopg.Connection, *, out: TextIO, ticket_id: str | None = None, tenant: str | None = None) -> int:
    """Write the records (of one ticket, of one tenant, or all) to `out` as JSON lines; return how many."""
    written = 0
    for row in _rows(conn, batch=get_audit_settings().verify_batch, ticket_id=ticket_id, tenant=tenant):
        out.write(canonical_json(_record(row).to_json()) + "\n")
        written += 1
    return written
