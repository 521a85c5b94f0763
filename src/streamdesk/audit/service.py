"""Append to, checkpoint, verify, read and export the hash-chained audit trail.

Each record stores the canonical JSON of its content (sorted keys, no spaces) byte for byte. Its hash
is sha256 over `seq`, the previous record's hash and that JSON, so changing, removing, reordering or
inserting a record breaks the chain; the hash is also signed with HMAC-SHA256 under the audit key, so
a row forged with a correctly recomputed hash still fails without the key. Checkpoints (signed
`(seq, hash)` pairs) catch a deleted tail and rewrites that re-chain every later record.

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

from streamdesk.audit.config import AuditSettings, get_audit_settings
from streamdesk.audit.exceptions import CorruptAuditRecordError
from streamdesk.audit.models import GENESIS_HASH, AuditContent, AuditEvent, AuditRecord, Checkpoint, VerifyReport
from streamdesk.contracts import utcnow

AUDIT_LOCK = 0x5D0A0D17
"""Advisory lock key that serialises appends and checkpoints."""

_LAST = "SELECT seq, record_hash FROM audit_records ORDER BY seq DESC LIMIT 1"
_INSERT = "INSERT INTO audit_records (seq, content, prev_hash, record_hash, signature) VALUES (%s, %s, %s, %s, %s)"
_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (seq, record_hash, signature) VALUES (%s, %s, %s) ON CONFLICT (seq) DO NOTHING"
)
_COLUMNS = "seq, content, prev_hash, record_hash, signature"


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


def _locked(conn: psycopg.Connection) -> Any:
    """A transaction when the connection autocommits; otherwise the caller's, which the lock then spans."""
    return conn.transaction() if conn.autocommit else nullcontext()


def append(conn: psycopg.Connection, *, event: AuditEvent, settings: AuditSettings | None = None) -> AuditRecord:
    """Append one event to the chain under an advisory lock; the record commits with the caller's transaction."""
    settings = settings or get_audit_settings()
    with _locked(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
        last = conn.execute(_LAST).fetchone()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        content = canonical_json(AuditContent(**dict(event), recorded_at=utcnow()).model_dump(mode="json"))
        record_hash = chain_hash(seq=seq, prev_hash=prev_hash, content=content)
        signature = sign(record_hash, settings=settings)
        conn.execute(_INSERT, (seq, content, prev_hash, record_hash, signature))
        if seq % settings.checkpoint_every == 0:
            checkpoint_signature = sign_checkpoint(seq=seq, record_hash=record_hash, settings=settings)
            conn.execute(_INSERT_CHECKPOINT, (seq, record_hash, checkpoint_signature))
    return AuditRecord.from_row(
        seq=seq, content=content, prev_hash=prev_hash, record_hash=record_hash, signature=signature
    )


def checkpoint(conn: psycopg.Connection, *, settings: AuditSettings | None = None) -> Checkpoint | None:
    """Store a signed checkpoint of the chain's head now; None when the chain is empty."""
    settings = settings or get_audit_settings()
    with _locked(conn):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
        last = conn.execute(_LAST).fetchone()
        if last is None:
            return None
        seq, record_hash = last
        signature = sign_checkpoint(seq=seq, record_hash=record_hash, settings=settings)
        conn.execute(_INSERT_CHECKPOINT, (seq, record_hash, signature))
    return Checkpoint(seq=seq, record_hash=record_hash)


def _rows(conn: psycopg.Connection, *, batch: int, ticket_id: str | None = None) -> Iterator[tuple[Any, ...]]:
    """Stored rows in seq order, read in batches."""
    after = 0
    where = "seq > %s" + (" AND ticket_id = %s" if ticket_id is not None else "")
    query = f"SELECT {_COLUMNS} FROM audit_records WHERE {where} ORDER BY seq LIMIT %s"
    while True:
        params = (after, ticket_id, batch) if ticket_id is not None else (after, batch)
        rows = conn.execute(query, params).fetchall()
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


def verify(conn: psycopg.Connection, *, settings: AuditSettings | None = None) -> VerifyReport:
    """Walk the whole chain and the checkpoints; report the first record that was changed, removed, moved or forged."""
    settings = settings or get_audit_settings()
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
    if problem is not None:
        return VerifyReport(False, checked, len(checkpoints), first_broken_seq=problem[0], reason=problem[1])
    return VerifyReport(ok=True, checked=checked, checkpoints=len(checkpoints))


def trail(conn: psycopg.Connection, *, ticket_id: str) -> list[AuditRecord]:
    """Every record of one ticket, in chain order."""
    return [_record(row) for row in _rows(conn, batch=get_audit_settings().verify_batch, ticket_id=ticket_id)]


def records_after(conn: psycopg.Connection, *, after_seq: int, limit: int = 1000) -> list[AuditRecord]:
    """Up to `limit` records with seq greater than `after_seq`, in chain order."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit_records WHERE seq > %s ORDER BY seq LIMIT %s", (after_seq, limit)
    ).fetchall()
    return [_record(row) for row in rows]


def export(conn: psycopg.Connection, *, out: TextIO, ticket_id: str | None = None) -> int:
    """Write the records (of one ticket, or all) to `out` as JSON lines; return how many."""
    written = 0
    for row in _rows(conn, batch=get_audit_settings().verify_batch, ticket_id=ticket_id):
        out.write(canonical_json(_record(row).to_json()) + "\n")
        written += 1
    return written
