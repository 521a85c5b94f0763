"""/ingest: how far the workers are behind (consumer lag) and what was dead-lettered, with the reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from psycopg.rows import dict_row
from pydantic import BaseModel

from streamdesk.config import Settings
from streamdesk.ingest.status import INGEST_GROUP, ingest_lag, store_counts
from streamdesk.web.auth import Gate
from streamdesk.web.deps import ConnDep, app_settings

router = APIRouter(tags=["ingest"], dependencies=[Gate])
PREVIEW_BYTES = 500


class IngestLag(BaseModel):
    """Unprocessed messages per topic for the ingest consumer group, and what the store holds."""

    group: str
    lag: dict[str, int]
    total: int
    store: dict[str, Any]


class DeadLetterRow(BaseModel):
    """A message that could not be processed: where it came from, why, and the start of its bytes."""

    id: int
    topic: str
    partition: int
    offset: int
    reason: str
    error_type: str
    stage: str
    created_at: datetime
    headers: dict[str, Any]
    value_preview: str | None
    value_bytes: int | None


@router.get("/lag")
def show_lag(conn: ConnDep, settings: Annotated[Settings, Depends(app_settings)]) -> IngestLag:
    """Messages the ingest worker has not committed yet, per topic, and the store's row counts."""
    if not settings.kafka.bootstrap_servers:
        raise HTTPException(503, "no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
    lag = ingest_lag(settings.kafka.bootstrap_servers)
    return IngestLag(group=INGEST_GROUP, lag=lag, total=sum(lag.values()), store=store_counts(conn))


@router.get("/dead-letters")
def list_dead_letters(
    conn: ConnDep,
    topic: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[DeadLetterRow]:
    """Dead letters, newest first, with the reason and a text preview of the original bytes."""
    sql = (
        'SELECT id, topic, partition, "offset", reason, error_type, stage, created_at, headers, '
        f"substring(value from 1 for {PREVIEW_BYTES}) AS raw, "
        "octet_length(value) AS value_bytes FROM dead_letters"
    )
    params: list[Any] = []
    if topic is not None:
        sql += " WHERE topic = %s"
        params.append(topic)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql + " ORDER BY id DESC LIMIT %s OFFSET %s", [*params, limit, offset]).fetchall()
    return [
        DeadLetterRow(
            **{k: v for k, v in row.items() if k != "raw"},
            value_preview=None if row["raw"] is None else bytes(row["raw"]).decode("utf-8", errors="replace"),
        )
        for row in rows
    ]
