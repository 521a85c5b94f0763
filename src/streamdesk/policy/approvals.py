"""Pending actions: high-risk writes wait for a supervisor; each write executes at most once per idempotency key.

Every function works inside `conn.transaction()` (a savepoint when the caller has one open), and
appends its audit record there. A refused approval is recorded before the error is raised, so on an
autocommit connection (CLI, API) the denial stays in the trail.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.identity.models import Principal
from streamdesk.policy.exceptions import (
    ActionAlreadyDecidedError,
    ActionNotFoundError,
    IdempotencyConflictError,
    NotAnApproverError,
    SelfApprovalError,
)
from streamdesk.policy.models import ActionStatus, PendingAction

_COLUMNS = (
    "id::text AS id, idempotency_key, ticket_id, tenant, tool_name, arguments, proposer, reason, status, "
    "decided_by, decided_by_roles, decision_note, created_at, decided_at, executed_at"
)
_INSERT = """
    INSERT INTO pending_actions
        (idempotency_key, ticket_id, tenant, tool_name, arguments, proposer, proposer_id, reason)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
"""


def idempotency_key_for(*, ticket_id: str, event_id: str, tool_name: str, ordinal: int = 0) -> str:
    """The key of the `ordinal`-th call of `tool_name` while handling ticket event `event_id`.

    The arguments are left out on purpose: a redelivered event may lead the model to slightly different
    arguments, and it must still not execute the same write a second time.
    """
    return hashlib.sha256(f"{ticket_id}\n{event_id}\n{tool_name}\n{ordinal}".encode()).hexdigest()


def _action(row: Mapping[str, Any]) -> PendingAction:
    return PendingAction(**row)


def get_action(conn: psycopg.Connection, *, action_id: str, for_update: bool = False) -> PendingAction:
    """The pending action `action_id`, whatever its status."""
    try:
        key = uuid.UUID(action_id)
    except ValueError:
        raise ActionNotFoundError(
            f"{action_id!r} is not an action id (a UUID); see `streamdesk approvals list`"
        ) from None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM pending_actions WHERE id = %s" + (" FOR UPDATE" if for_update else ""), (key,)
        ).fetchone()
    if row is None:
        raise ActionNotFoundError(f"no pending action {action_id!r}; list them with `streamdesk approvals list`")
    return _action(row)


def list_actions(
    conn: psycopg.Connection, *, status: ActionStatus | None = "pending", tenant: str | None = None, limit: int = 100
) -> list[PendingAction]:
    """Actions with `status` (all when None), oldest first, optionally of one tenant."""
    where, params = db.equal_to(status=status, tenant=tenant)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM pending_actions WHERE {where} ORDER BY created_at, id LIMIT %s", (*params, limit)
        ).fetchall()
    return [_action(row) for row in rows]


def propose(
    conn: psycopg.Connection,
    *,
    ticket_id: str,
    tool_name: str,
    arguments: Mapping[str, Any],
    principal: Principal,
    idempotency_key: str,
    reason: str = "",
) -> PendingAction:
    """Record a write that must wait for approval; proposing the same key again returns the same action."""
    with conn.transaction():
        inserted = conn.execute(
            _INSERT,
            (
                idempotency_key,
                ticket_id,
                principal.tenant,
                tool_name,
                Jsonb(dict(arguments)),
                Jsonb(principal.to_json()),
                principal.id,
                reason,
            ),
        ).fetchone()
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM pending_actions WHERE idempotency_key = %s", (idempotency_key,)
            ).fetchone()
        assert row is not None
        action = _action(row)
        if action.tool_name != tool_name or action.arguments != dict(arguments) or action.ticket_id != ticket_id:
            raise IdempotencyConflictError(
                f"idempotency key {idempotency_key!r} already names {action.tool_name} on ticket {action.ticket_id}; "
                "derive a new key for a different call (idempotency_key_for with another ordinal)"
            )
        if inserted is not None:
            audit.append(
                conn,
                event=AuditEvent.for_principal(
                    principal,
                    action=AuditAction.APPROVAL_REQUESTED,
                    ticket_id=ticket_id,
                    tool_name=tool_name,
                    arguments=dict(arguments),
                    decision="pending",
                    reason=reason,
                    details={"action_id": action.id, "idempotency_key": idempotency_key},
                ),
            )
    return action


def _record_decision(
    conn: psycopg.Connection,
    *,
    action: PendingAction,
    approver: Principal,
    attempted: ActionStatus,
    decision: str,
    reason: str,
) -> None:
    audit.append(
        conn,
        event=AuditEvent.for_principal(
            action.proposer,
            action=AuditAction.APPROVAL if attempted == "approved" else AuditAction.REJECTION,
            ticket_id=action.ticket_id,
            approver_id=approver.id,
            tool_name=action.tool_name,
            arguments=action.arguments,
            decision=decision,
            reason=reason,
            details={
                "action_id": action.id,
                "idempotency_key": action.idempotency_key,
                "approver_roles": approver.role_names,
            },
        ),
    )


def _refusal(action: PendingAction, approver: Principal) -> Exception | None:
    if not approver.can_approve or approver.tenant != action.tenant:
        return NotAnApproverError(
            f"{approver.describe()} may not decide action {action.id} of tenant {action.tenant!r}; "
            "a supervisor or admin of that tenant must"
        )
    if approver.id == action.proposer.id:
        return SelfApprovalError(
            f"{approver.id!r} proposed action {action.id} and cannot decide it; ask another supervisor"
        )
    if action.status != "pending":
        return ActionAlreadyDecidedError(
            f"action {action.id} is already {action.status}"
            + (f" by {action.decided_by!r}" if action.decided_by else "")
            + "; nothing to decide"
        )
    return None


def _decide(
    conn: psycopg.Connection, *, action_id: str, approver: Principal, status: ActionStatus, note: str | None
) -> PendingAction:
    refusal: Exception | None = None
    with conn.transaction():
        action = get_action(conn, action_id=action_id, for_update=True)
        refusal = _refusal(action, approver)
        if refusal is not None:
            _record_decision(
                conn, action=action, approver=approver, attempted=status, decision="denied", reason=str(refusal)
            )
        else:
            conn.execute(
                "UPDATE pending_actions SET status = %s, decided_by = %s, decided_by_roles = %s, decision_note = %s, "
                "decided_at = now() WHERE id = %s",
                (status, approver.id, approver.role_names, note, uuid.UUID(action.id)),
            )
            reason = note or f"{status} by {approver.id}"
            _record_decision(conn, action=action, approver=approver, attempted=status, decision=status, reason=reason)
    if refusal is not None:
        raise refusal
    return get_action(conn, action_id=action_id)


def approve(conn: psycopg.Connection, *, action_id: str, approver: Principal, note: str | None = None) -> PendingAction:
    """Approve a pending action (supervisor or admin of its tenant, not its proposer)."""
    return _decide(conn, action_id=action_id, approver=approver, status="approved", note=note)


def reject(conn: psycopg.Connection, *, action_id: str, approver: Principal, note: str | None = None) -> PendingAction:
    """Reject a pending action (supervisor or admin of its tenant, not its proposer)."""
    return _decide(conn, action_id=action_id, approver=approver, status="rejected", note=note)


def acting_principal(action: PendingAction) -> Principal:
    """Who runs an approved action: its proposer, carrying the approver's id into the audit trail."""
    if not action.is_approved:
        raise ActionAlreadyDecidedError(
            f"action {action.id} is {action.status}, not approved; it must not run (see `streamdesk approvals list`)"
        )
    return action.proposer.model_copy(update={"approver": action.decided_by})


def claim_for_execution(
    conn: psycopg.Connection,
    *,
    idempotency_key: str,
    requires_approval: bool = False,
    tool_name: str | None = None,
    ticket_id: str | None = None,
) -> bool:
    """True exactly once per key: the caller may now run the write. False for a repeat or an unapproved action.

    A key that names a pending action is claimable only once that action is approved; with
    `requires_approval` a key without an approved action is never claimable. Claim in the transaction
    that records the write's outcome: a crash before commit frees the key, one after keeps it
    (at most once, never twice).
    """
    with conn.transaction():
        pending = conn.execute(
            "SELECT status FROM pending_actions WHERE idempotency_key = %s FOR UPDATE", (idempotency_key,)
        ).fetchone()
        if pending is not None and pending[0] not in ("approved", "executed"):
            return False
        if pending is None and requires_approval:
            return False
        claimed = conn.execute(
            "INSERT INTO executed_actions (idempotency_key, tool_name, ticket_id) VALUES (%s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
            (idempotency_key, tool_name, ticket_id),
        ).fetchone()
        if claimed is not None and pending is not None:
            conn.execute(
                "UPDATE pending_actions SET status = 'executed', executed_at = now() WHERE idempotency_key = %s",
                (idempotency_key,),
            )
    return claimed is not None
