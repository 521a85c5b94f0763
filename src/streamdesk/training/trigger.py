"""The retrain trigger: enough new balanced examples, or the schedule, puts a request on the `retrain` topic."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from streamdesk.contracts import utcnow
from streamdesk.feedback import service as feedback
from streamdesk.feedback.models import ClassBalance
from streamdesk.kafka import Publisher
from streamdesk.training.config import TrainingSettings, get_training_settings
from streamdesk.training.models import RetrainReason, RetrainRequest, RetrainRun

RETRAIN_TOPIC = "retrain"


def retrain_due(
    *, pending: ClassBalance, last_retrain_at: datetime | None, now: datetime, settings: TrainingSettings
) -> RetrainReason | None:
    """'count' when enough new examples with both classes represented exist, 'schedule' when one is due, or None."""
    if pending.total >= settings.min_new_examples and pending.minority_fraction >= settings.min_minority_fraction:
        return "count"
    scheduled = settings.schedule_hours > 0 and pending.total >= settings.min_scheduled_examples
    if scheduled and (last_retrain_at is None or now - last_retrain_at >= timedelta(hours=settings.schedule_hours)):
        return "schedule"
    return None


def open_request(conn: psycopg.Connection, *, now: datetime, settings: TrainingSettings) -> str | None:
    """The id of a retrain request still requested or running (and not stale), if any."""
    row = conn.execute(
        "SELECT request_id FROM retrain_runs WHERE status IN ('requested', 'running') AND requested_at > %s "
        "ORDER BY requested_at DESC LIMIT 1",
        (now - timedelta(hours=settings.stale_request_hours),),
    ).fetchone()
    return None if row is None else str(row[0])


def last_retrain_at(conn: psycopg.Connection) -> datetime | None:
    """When the last retrain was requested (None: never)."""
    row = conn.execute("SELECT max(requested_at) FROM retrain_runs").fetchone()
    return None if row is None else row[0]


def retrain_runs(conn: psycopg.Connection, *, limit: int = 50) -> list[RetrainRun]:
    """The latest retrain runs, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT request_id, reason, status, version, requested_at, started_at, finished_at, details "
            "FROM retrain_runs ORDER BY requested_at DESC LIMIT %s",
            (limit,),
        ).fetchall()
    return [RetrainRun(**row) for row in rows]


def request_retrain(
    conn: psycopg.Connection,
    *,
    reason: RetrainReason,
    pending: ClassBalance,
    requested_by: str,
    publisher: Publisher | None = None,
    now: datetime | None = None,
) -> RetrainRequest:
    """Record a retrain request and, with a publisher, put it on the `retrain` topic."""
    request = RetrainRequest(
        request_id=str(uuid.uuid4()),
        reason=reason,
        pending_examples=pending.total,
        desirable=pending.desirable,
        undesirable=pending.undesirable,
        requested_by=requested_by,
        requested_at=now or utcnow(),
    )
    conn.execute(
        "INSERT INTO retrain_runs (request_id, reason, requested_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (request.request_id, request.reason, request.requested_at),
    )
    if not conn.autocommit:
        conn.commit()
    if publisher is not None:
        publisher.publish(RETRAIN_TOPIC, request.to_json(), key="retrain")
        publisher.flush()
    return request


def check_and_request(
    conn: psycopg.Connection,
    *,
    publisher: Publisher | None,
    settings: TrainingSettings | None = None,
    now: datetime | None = None,
    requested_by: str = "retrain-trigger",
) -> RetrainRequest | None:
    """Request a retrain when one is due and none is open; what the learn worker's timer runs."""
    settings = settings or get_training_settings()
    now = now or utcnow()
    if open_request(conn, now=now, settings=settings) is not None:
        return None
    pending = feedback.pending_balance(conn)
    reason = retrain_due(pending=pending, last_retrain_at=last_retrain_at(conn), now=now, settings=settings)
    if reason is None:
        return None
    return request_retrain(
        conn, reason=reason, pending=pending, requested_by=requested_by, publisher=publisher, now=now
    )
