"""Runtime settings: how `streamdesk up` stops (env: `STREAMDESK_RUNTIME__<FIELD>`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RuntimeSettings(BaseModel):
    """How long `streamdesk up` lets its workers drain the broker before it stops them."""

    drain_timeout_s: float = Field(
        60.0,
        ge=0,
        description="Longest wait on stop for ingest to finish what is on the broker (lag 0) and the relays to "
        "publish every stored webhook and audit record; past it the workers stop anyway (both are kept in "
        "PostgreSQL).",
    )
    drain_quiet_s: float = Field(
        2.0, ge=0, description="How long the store must stay unchanged, with lag 0, to count as drained."
    )
    worker_stop_timeout_s: float = Field(
        15.0, gt=0, description="Longest wait for a worker to exit after SIGTERM before it is killed."
    )
