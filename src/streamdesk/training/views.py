"""/models: the adapter registry (list, promote, roll back), retrain history, and asking for a retrain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from streamdesk.feedback import service as feedback
from streamdesk.training import registry, service, trigger
from streamdesk.training.models import AdapterVersion, ModelEvent, RetrainRequest, RetrainRun
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep, PublisherDep

router = APIRouter(tags=["models"], dependencies=[Gate])


class ModelChange(BaseModel):
    """Why; kept in the audit trail and on the `model` topic."""

    reason: str = Field(default="", max_length=1000)


@router.get("")
def list_models(conn: ConnDep) -> list[AdapterVersion]:
    """Every registered adapter, newest first, with status, lineage, metrics and gate report."""
    return registry.list_versions(conn)


@router.get("/retrains")
def list_retrains(conn: ConnDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RetrainRun]:
    """Retrain requests, newest first, with their outcome (training and gate numbers in `details`)."""
    return trigger.retrain_runs(conn, limit=limit)


@router.post("/promote/{version}")
def promote_model(
    version: str, operator: PrincipalDep, conn: ConnDep, publisher: PublisherDep, body: ModelChange | None = None
) -> ModelEvent:
    """Serve adapter `version` now (the serving one is retired); audited and announced on the `model` topic."""
    return registry.promote(
        conn,
        version=version,
        actor=operator.id,
        actor_kind="user",
        reason=(body.reason if body else "") or "promoted over the API",
        publisher=publisher,
    )


@router.post("/rollback")
def rollback_model(
    operator: PrincipalDep, conn: ConnDep, publisher: PublisherDep, body: ModelChange | None = None
) -> ModelEvent:
    """Retire the serving adapter and restore the one it replaced (or the base model); audited and announced."""
    return registry.rollback(
        conn,
        base_model=service.BASE_MODEL,
        actor=operator.id,
        actor_kind="user",
        reason=(body.reason if body else "") or "rolled back over the API",
        publisher=publisher,
    )


@router.post("/retrain", status_code=202)
def request_retrain(operator: PrincipalDep, conn: ConnDep, publisher: PublisherDep) -> RetrainRequest:
    """Ask the learn worker for a retrain on the `retrain` topic (it trains, gates and maybe promotes)."""
    return trigger.request_retrain(
        conn, reason="manual", pending=feedback.pending_balance(conn), requested_by=operator.id, publisher=publisher
    )
