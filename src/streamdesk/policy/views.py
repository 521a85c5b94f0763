"""/approvals: list pending actions and approve or reject them over HTTP (who may: the policy's route rules)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from streamdesk import db
from streamdesk.identity.models import Principal, Role
from streamdesk.policy import approvals
from streamdesk.policy.models import PendingAction
from streamdesk.web.auth import Gate, PrincipalDep

router = APIRouter(tags=["approvals"], dependencies=[Gate])
READER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
"""Roles `GET /approvals` admits in the shipped rules (rules.yaml decides; this is for display)."""


class DecisionBody(BaseModel):
    """Optional note kept with the decision in the audit trail."""

    note: str | None = None


@router.get("")
def list_pending(
    operator: PrincipalDep, status: Literal["pending", "approved", "rejected", "executed"] = "pending"
) -> list[PendingAction]:
    """Actions of the operator's tenant with `status`, oldest first."""
    with db.request_connection() as conn:
        return approvals.list_actions(conn, status=status, tenant=operator.tenant)


def _decide(action_id: str, operator: Principal, body: DecisionBody | None, *, approve: bool) -> PendingAction:
    decide = approvals.approve if approve else approvals.reject
    with db.request_connection() as conn:
        return decide(conn, action_id=action_id, approver=operator, note=body.note if body else None)


@router.post("/{action_id}/approve")
def approve_action(action_id: str, operator: PrincipalDep, body: DecisionBody | None = None) -> PendingAction:
    """Approve a pending action (supervisor or admin, not its proposer)."""
    return _decide(action_id, operator, body, approve=True)


@router.post("/{action_id}/reject")
def reject_action(action_id: str, operator: PrincipalDep, body: DecisionBody | None = None) -> PendingAction:
    """Reject a pending action (supervisor or admin, not its proposer)."""
    return _decide(action_id, operator, body, approve=False)
