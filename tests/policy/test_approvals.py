"""Approvals gate high-risk writes; an idempotency key lets a write execute once, however often it is redelivered."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from streamdesk import db
from streamdesk.audit import service as audit
from streamdesk.identity.models import Role
from streamdesk.policy import approvals
from streamdesk.policy import service as policy
from streamdesk.policy.exceptions import (
    ActionAlreadyDecidedError,
    ActionNotFoundError,
    IdempotencyConflictError,
    NotAnApproverError,
    SelfApprovalError,
)
from streamdesk.policy.models import PendingAction
from tests.policy.conftest import ORDER, TICKET, TRUSTED, principal_for

AGENT = principal_for(Role.SERVICE_AGENT)
SUPERVISOR = principal_for(Role.SUPERVISOR, name="sam")
CANCEL = {"order_id": ORDER, "reason": "no longer needed"}


def propose_cancel(conn: psycopg.Connection, key: str = "key-1", **kwargs: Any) -> PendingAction:
    options: dict[str, Any] = {"principal": AGENT, "arguments": CANCEL}
    options.update(kwargs)
    return approvals.propose(
        conn,
        ticket_id=TICKET,
        tool_name="cancel_pending_order",
        idempotency_key=key,
        reason="customer asked",
        **options,
    )


def test_proposing_the_same_key_twice_returns_the_same_action(conn: psycopg.Connection) -> None:
    first = propose_cancel(conn)
    again = propose_cancel(conn)
    assert first.id == again.id and first.status == "pending" and first.proposer == AGENT
    requested = [r for r in audit.trail(conn, ticket_id=TICKET) if r.action == "approval_requested"]
    assert len(requested) == 1 and requested[0].details["action_id"] == first.id
    assert [a.id for a in approvals.list_actions(conn)] == [first.id]


def test_a_key_reused_for_another_call_is_refused(conn: psycopg.Connection) -> None:
    propose_cancel(conn)
    with pytest.raises(IdempotencyConflictError, match="key-1"):
        propose_cancel(conn, arguments={"order_id": ORDER, "reason": "ordered by mistake"})


def test_a_supervisor_approves_and_the_trail_names_them(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn)
    approved = approvals.approve(conn, action_id=action.id, approver=SUPERVISOR, note="customer confirmed")
    assert (
        approved.status == "approved" and approved.decided_by == "sam" and approved.decided_by_roles == ["supervisor"]
    )
    record = audit.trail(conn, ticket_id=TICKET)[-1]
    assert record.action == "approval" and record.approver_id == "sam" and record.actor_id == AGENT.id
    assert record.customer_id == AGENT.customer_id and record.reason == "customer confirmed"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.AUDITOR])
def test_only_supervisors_and_admins_decide_and_refusals_are_audited(conn: psycopg.Connection, role: Role) -> None:
    action = propose_cancel(conn)
    with pytest.raises(NotAnApproverError, match="supervisor or admin"):
        approvals.approve(conn, action_id=action.id, approver=principal_for(role))
    assert approvals.get_action(conn, action_id=action.id).status == "pending"
    denial = audit.trail(conn, ticket_id=TICKET)[-1]
    assert denial.action == "approval" and denial.decision == "denied" and denial.approver_id == f"{role.value}-1"


def test_the_agent_identity_cannot_approve(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn, principal=principal_for(Role.AGENT))
    with pytest.raises(NotAnApproverError):
        approvals.approve(conn, action_id=action.id, approver=AGENT)


def test_an_approver_cannot_approve_their_own_action(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn, principal=SUPERVISOR)
    with pytest.raises(SelfApprovalError, match="another supervisor"):
        approvals.approve(conn, action_id=action.id, approver=SUPERVISOR)
    admin = principal_for(Role.ADMIN)
    assert approvals.approve(conn, action_id=action.id, approver=admin).status == "approved"


def test_a_supervisor_of_another_tenant_cannot_decide(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn)
    with pytest.raises(NotAnApproverError, match="tenant"):
        approvals.approve(conn, action_id=action.id, approver=principal_for(Role.SUPERVISOR, tenant="acme"))


def test_a_decided_action_cannot_be_decided_again(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn)
    approvals.reject(conn, action_id=action.id, approver=SUPERVISOR, note="not eligible")
    with pytest.raises(ActionAlreadyDecidedError, match="rejected"):
        approvals.approve(conn, action_id=action.id, approver=principal_for(Role.ADMIN))


def test_unknown_action_ids_are_named(conn: psycopg.Connection) -> None:
    with pytest.raises(ActionNotFoundError, match="not an action id"):
        approvals.get_action(conn, action_id="nope")
    with pytest.raises(ActionNotFoundError, match="no pending action"):
        approvals.get_action(conn, action_id="00000000-0000-0000-0000-000000000000")


def test_approval_gates_execution(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn)
    assert not approvals.claim_for_execution(conn, idempotency_key=action.idempotency_key)
    approvals.approve(conn, action_id=action.id, approver=SUPERVISOR)
    assert approvals.claim_for_execution(conn, idempotency_key=action.idempotency_key)
    assert not approvals.claim_for_execution(conn, idempotency_key=action.idempotency_key)
    executed = approvals.get_action(conn, action_id=action.id)
    assert executed.status == "executed" and executed.executed_at is not None


def test_the_approved_write_runs_as_the_proposer_naming_the_approver(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn)
    with pytest.raises(ActionAlreadyDecidedError, match="not approved"):
        approvals.acting_principal(action)
    approved = approvals.approve(conn, action_id=action.id, approver=SUPERVISOR)
    actor = approvals.acting_principal(approved)
    assert actor.id == AGENT.id and actor.customer_id == AGENT.customer_id and actor.approver == "sam"


def test_a_rejected_action_never_executes(conn: psycopg.Connection) -> None:
    action = propose_cancel(conn)
    approvals.reject(conn, action_id=action.id, approver=SUPERVISOR)
    assert not approvals.claim_for_execution(conn, idempotency_key=action.idempotency_key)


def test_claiming_twice_returns_false_the_second_time(conn: psycopg.Connection) -> None:
    assert approvals.claim_for_execution(conn, idempotency_key="k", tool_name="update_ticket", ticket_id=TICKET)
    assert not approvals.claim_for_execution(conn, idempotency_key="k")
    assert not approvals.claim_for_execution(conn, idempotency_key="other", requires_approval=True)


def test_executed_keys_cannot_be_deleted_to_run_again(conn: psycopg.Connection) -> None:
    approvals.claim_for_execution(conn, idempotency_key="k")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM executed_actions")


def test_concurrent_claims_let_exactly_one_through(clean_db: str) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        with db.connect(clean_db, autocommit=True) as own:
            barrier.wait()
            results.append(approvals.claim_for_execution(own, idempotency_key="race"))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


def handle_event(conn: psycopg.Connection, *, event_id: str, executed: list[str]) -> str:
    """What the ticket worker does for one event: decide, propose or claim, execute at most once."""
    key = approvals.idempotency_key_for(ticket_id=TICKET, event_id=event_id, tool_name="cancel_pending_order")
    decision = policy.enforce(
        conn,
        ticket_id=TICKET,
        principal=AGENT,
        tool_name="cancel_pending_order",
        tool_kind="write",
        arguments=CANCEL,
        trusted_values=TRUSTED,
    )
    if not decision.allowed:
        return "denied"
    if decision.requires_approval:
        action = approvals.propose(
            conn,
            ticket_id=TICKET,
            tool_name="cancel_pending_order",
            arguments=CANCEL,
            principal=AGENT,
            idempotency_key=key,
        )
        if not action.is_approved:
            return "waiting"
    if approvals.claim_for_execution(conn, idempotency_key=key, requires_approval=decision.requires_approval):
        executed.append(key)
        return "executed"
    return "already executed"


def test_a_redelivered_event_never_executes_the_write_twice(conn: psycopg.Connection) -> None:
    executed: list[str] = []
    assert handle_event(conn, event_id="evt-1", executed=executed) == "waiting"
    assert handle_event(conn, event_id="evt-1", executed=executed) == "waiting"
    (action,) = approvals.list_actions(conn)
    approvals.approve(conn, action_id=action.id, approver=SUPERVISOR)
    outcomes = [handle_event(conn, event_id="evt-1", executed=executed) for _ in range(3)]
    assert outcomes == ["executed", "already executed", "already executed"]
    assert len(executed) == 1
    assert audit.verify(conn).ok
