"""/approvals: list pending actions and approve or reject them over HTTP (bearer token of an operator)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel

from streamdesk import db
from streamdesk.identity import service as identity
from streamdesk.identity.exceptions import UnknownOperatorError
from streamdesk.identity.models import Principal, Role
from streamdesk.policy import approvals
from streamdesk.policy.exceptions import (
    ActionAlreadyDecidedError,
    ActionNotFoundError,
    ApprovalError,
    NotAnApproverError,
    SelfApprovalError,
)
from streamdesk.policy.models import PendingAction

router = APIRouter(tags=["approvals"])
READER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR})
STATUS_CODES: dict[type[ApprovalError], int] = {
    ActionNotFoundError: 404,
    NotAnApproverError: 403,
    SelfApprovalError: 403,
    ActionAlreadyDecidedError: 409,
}


def current_operator(authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The operator whose bearer token the request carries; 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "send `Authorization: Bearer <operator token>`", {"WWW-Authenticate": "Bearer"})
    try:
        return identity.operator_for_token(token=token.strip())
    except UnknownOperatorError as exc:
        raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None


OperatorDep = Annotated[Principal, Depends(current_operator)]


class DecisionBody(BaseModel):
    """Optional note kept with the decision in the audit trail."""

    note: str | None = None


@router.get("")
def list_pending(
    operator: OperatorDep, status: Literal["pending", "approved", "rejected", "executed"] = "pending"
) -> list[PendingAction]:
    """Actions of the operator's tenant with `status`, oldest first (supervisor, admin, auditor)."""
    if not operator.has_any_role(READER_ROLES):
        raise HTTPException(403, f"{operator.id!r} may not list actions; needs supervisor, admin or auditor")
    with db.connect(autocommit=True) as conn:
        return approvals.list_actions(conn, status=status, tenant=operator.tenant)


def _decide(action_id: str, operator: Principal, body: DecisionBody | None, *, approve: bool) -> PendingAction:
    decide = approvals.approve if approve else approvals.reject
    try:
        with db.connect(autocommit=True) as conn:
            return decide(conn, action_id=action_id, approver=operator, note=body.note if body else None)
    except ApprovalError as exc:
        raise HTTPException(STATUS_CODES.get(type(exc), 400), str(exc)) from None


@router.post("/{action_id}/approve")
def approve_action(action_id: str, operator: OperatorDep, body: DecisionBody | None = None) -> PendingAction:
    """Approve a pending action (supervisor or admin, not its proposer)."""
    return _decide(action_id, operator, body, approve=True)


@router.post("/{action_id}/reject")
def reject_action(action_id: str, operator: OperatorDep, body: DecisionBody | None = None) -> PendingAction:
    """Reject a pending action (supervisor or admin, not its proposer)."""
    return _decide(action_id, operator, body, approve=False)
