"""Drain on stop: wait, within a bound, until ingest has stored everything on the broker and the relays are done.

`streamdesk up` stops intake (the API) first, then calls `drain`, then stops the workers and the broker.
Drained means: the ingest group's lag is 0 on every topic it reads, every stored webhook delivery has been
published, the `audit` topic ends with the audit chain's last record, and the store has not changed for
`quiet_s` (Tansu reports a batch's first record as its high watermark, so a quiet store guards against a
lag of 0 read mid-batch). Ingest's lag on `canonical.ticket` covers the hand-off to the agent as well: the
ticket hop publishes each stored event to `ticket.stored` before it commits that batch's offsets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from streamdesk import db
from streamdesk.audit import publisher as audit_publisher
from streamdesk.audit import service as audit
from streamdesk.gateway import intake
from streamdesk.ingest import status as ingest_status

log = logging.getLogger(__name__)


@dataclass
class DrainResult:
    """How the drain ended: drained or not, after how long, and what was left when it last looked."""

    drained: bool
    seconds: float
    lag: dict[str, int] = field(default_factory=dict)
    unpublished_webhooks: int = 0
    unpublished_audit: int = 0
    error: str | None = None


def _snapshot(*, bootstrap_servers: str, database_url: str, result: DrainResult) -> dict[str, Any]:
    """Fill `result` with what is left now; return the store's counts."""
    result.lag = {topic: n for topic, n in ingest_status.ingest_lag(bootstrap_servers).items() if n}
    with db.connect(database_url) as conn:
        result.unpublished_webhooks = intake.unprocessed(conn=conn, unpublished_only=True)
        stored_seq = audit.last_seq(conn)
        counts = ingest_status.store_counts(conn)
    result.unpublished_audit = max(0, stored_seq - audit_publisher.last_published_seq(bootstrap_servers))
    return counts


def drain(*, bootstrap_servers: str, database_url: str, timeout_s: float, quiet_s: float) -> DrainResult:
    """Wait until ingest and the relays have caught up, or `timeout_s` passes; log what was left either way."""
    started = time.monotonic()
    result = DrainResult(drained=False, seconds=0.0)
    last: dict[str, Any] | None = None
    quiet_since = started
    while True:
        try:
            counts = _snapshot(bootstrap_servers=bootstrap_servers, database_url=database_url, result=result)
            result.error = None
            if counts != last:
                last, quiet_since = counts, time.monotonic()
            left = result.lag or result.unpublished_webhooks or result.unpublished_audit
            if not left and time.monotonic() - quiet_since >= quiet_s:
                result.drained = True
        except Exception as exc:  # an unreachable broker or database: keep trying until the bound
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.monotonic() - started
        if result.drained or result.seconds >= timeout_s:
            break
        time.sleep(0.5)
    if result.drained:
        log.info("drained in %.1fs: ingest lag 0, every stored webhook and audit record published", result.seconds)
    else:
        log.warning(
            "drain timed out after %.0fs (STREAMDESK_RUNTIME__DRAIN_TIMEOUT_S): ingest lag %s, %d webhooks and "
            "%d audit records unpublished%s; stored webhooks and audit records are relayed again at the next "
            "start, other events still on the embedded broker are lost with it",
            result.seconds,
            result.lag or 0,
            result.unpublished_webhooks,
            result.unpublished_audit,
            f", last error {result.error}" if result.error else "",
        )
    return result
