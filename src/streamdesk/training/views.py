"""/models: the adapter registry (list, promote, roll back), retrain history, and asking for a retrain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from streamdesk.api.auth import Gate, PrincipalDep
from streamdesk.api.deps import ConnDep, PublisherDep
from streamdesk.feedback import service as feedback
from streamdesk.training import registry, service, trigger
from streamdesk.training.models import AdapterVersion, ModelEvent, RetrainRequest

router = APIRouter(tags=["models"], dependencies=[Gate])


class ModelChange(BaseModel):
    """Why; kept in the audit trail and on the `model` topic."""

    reason: str = Field(default="", max_length=1000)


class RetrainRun(BaseModel):
    """One retrain request and how it went."""

    request_id: str
    reason: str
    status: str
    version: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    details: dict[str, Any]


@router.get("")
def list_models(conn: ConnDep) -> list[AdapterVersion]:
    """Every registered adapter, newest first, with status, lineage, metrics and gate report."""
    return registry.list_versions(conn)


@router.get("/retrains")
def list_retrains(conn: ConnDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RetrainRun]:
    """Retrain requests, newest first, with their outcome (training and gate numbers in `details`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT request_id, reason, status, version, requested_at, started_at, finished_at, details "
            "FROM retrain_runs ORDER BY requested_at DESC LIMIT %s",
            (limit,),
        ).fetchall()
    return [RetrainRun(**row) for row in rows]


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
