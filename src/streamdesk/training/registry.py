"""The adapter registry: versions with lineage, data digest, metrics and status; promotion and rollback.

At most one adapter per base model is promoted (a partial unique index); none means the base model
serves. Every promotion and rollback is a row in `adapter_promotions` (what rollback walks back) and an
audit record, both in the same transaction as the status change; the `model` event is published after
the commit, so the agent never swaps to an adapter whose promotion did not commit.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streamdesk import topics
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.contracts import utcnow
from streamdesk.kafka import Publisher
from streamdesk.training.exceptions import AdapterVersionNotFoundError, PromotionError
from streamdesk.training.models import AdapterVersion, ModelEvent

MODEL_TOPIC = topics.MODEL
PROMOTION_AUDIT = AuditAction.MODEL_PROMOTED
ROLLBACK_AUDIT = AuditAction.MODEL_ROLLED_BACK
REGISTRY_LOCK = 0x5D0A0D19
"""Advisory lock key that serialises promotions and rollbacks (not the audit relay's 0x5D0A0D18, held for its life)."""
_COLUMNS = (
    "version, base_model, parent, dataset_digest, config, metrics, gate, status, path, created_at, promoted_at, "
    "retired_at"
)


def _version(row: Mapping[str, Any]) -> AdapterVersion:
    return AdapterVersion(**row)


def rounded(metrics: Mapping[str, float]) -> dict[str, float]:
    """A run's final training metrics rounded to six places, as the registry keeps them."""
    return {key: round(value, 6) for key, value in metrics.items()}


def register_candidate(
    conn: psycopg.Connection,
    *,
    staging_dir: Path,
    adapters_dir: Path,
    base_model: str,
    parent: str | None,
    dataset_digest: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> AdapterVersion:
    """Register a trained adapter as a candidate and move its folder to `<adapters_dir>/<version>`."""
    adapters_dir.mkdir(parents=True, exist_ok=True)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO adapter_versions (base_model, parent, dataset_digest, config, metrics, path) "
            "VALUES (%s, %s, %s, %s, %s, '') RETURNING version",
            (base_model, parent, dataset_digest, Jsonb(dict(config)), Jsonb(dict(metrics))),
        ).fetchone()
        assert row is not None
        target = adapters_dir / row["version"]
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging_dir, target)
        cur.execute("UPDATE adapter_versions SET path = %s WHERE version = %s", (str(target), row["version"]))
        return get(conn, version=row["version"])


def get(conn: psycopg.Connection, *, version: str) -> AdapterVersion:
    """The registered adapter `version`."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM adapter_versions WHERE version = %s", (version,)).fetchone()
    if row is None:
        raise AdapterVersionNotFoundError(f"no adapter version {version!r}; see `streamdesk models list`")
    return _version(row)


def list_versions(conn: psycopg.Connection, *, base_model: str | None = None) -> list[AdapterVersion]:
    """Every registered adapter (of one base model), newest first."""
    where, params = ("WHERE base_model = %s", (base_model,)) if base_model else ("", ())
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM adapter_versions {where} ORDER BY id DESC", params).fetchall()
    return [_version(row) for row in rows]


def serving(conn: psycopg.Connection, *, base_model: str) -> AdapterVersion | None:
    """The promoted adapter of `base_model`; None when the base model serves."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM adapter_versions WHERE base_model = %s AND status = 'promoted'", (base_model,)
        ).fetchone()
    return None if row is None else _version(row)


def record_gate(conn: psycopg.Connection, *, version: str, report: Mapping[str, Any]) -> None:
    """Store the eval gate's report with the candidate."""
    conn.execute("UPDATE adapter_versions SET gate = %s WHERE version = %s", (Jsonb(dict(report)), version))


def _audit(
    conn: psycopg.Connection, *, action: AuditAction, decision: str, version: str | None, details: dict[str, Any]
) -> None:
    actor, actor_kind = details["actor"], details.get("actor_kind", "service")
    audit.append(
        conn,
        event=AuditEvent(
            action=action,
            actor_id=actor,
            actor_kind=actor_kind,
            model=details["base_model"],
            adapter_version=version,
            tool_name="adapter_registry",
            decision=decision,
            reason=details.get("reason") or None,
            details=details,
        ),
    )


def _set_serving(conn: psycopg.Connection, *, base_model: str, version: str | None) -> str | None:
    """Retire the promoted adapter of `base_model` and promote `version` (None: the base model); return the old one."""
    now = utcnow()
    old = serving(conn, base_model=base_model)
    if old is not None:
        conn.execute(
            "UPDATE adapter_versions SET status = 'retired', retired_at = %s WHERE version = %s", (now, old.version)
        )
    if version is not None:
        conn.execute(
            "UPDATE adapter_versions SET status = 'promoted', promoted_at = %s, retired_at = NULL WHERE version = %s",
            (now, version),
        )
    return None if old is None else old.version


def _publish(publisher: Publisher | None, event: ModelEvent) -> None:
    if publisher is not None:
        publisher.publish(MODEL_TOPIC, event.to_json(), key=event.base_model)
        publisher.flush()


def _record_change(
    conn: psycopg.Connection,
    *,
    action: Literal["promoted", "rolled_back"],
    adapter: AdapterVersion,
    other: str | None,
    actor: str,
    actor_kind: str,
    reason: str,
) -> ModelEvent:
    """Log `adapter` promoted over `other` (or rolled back to `other`) in `adapter_promotions` and the audit trail.

    Returns the `model` event announcing the change; None for `other` is the base model.
    """
    version: str | None
    if action == "promoted":
        version, previous = adapter.version, other
        details = {"previous": other, "dataset_digest": adapter.dataset_digest, "gate": adapter.gate}
        extra = _lineage(adapter)
    else:
        version, previous = other, adapter.version
        details, extra = {"rolled_back": adapter.version, "restored": other}, {}
    base_model = adapter.base_model
    conn.execute(
        "INSERT INTO adapter_promotions (base_model, action, version, previous, actor, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (base_model, action, version, previous, actor, reason),
    )
    audited = {"event": f"adapter_{action}", "base_model": base_model, **details}
    audited |= {"actor": actor, "actor_kind": actor_kind, "reason": reason}
    audit_action = PROMOTION_AUDIT if action == "promoted" else ROLLBACK_AUDIT
    _audit(conn, action=audit_action, decision=action, version=adapter.version, details=audited)
    fields = {"version": version, "previous": previous, "base_model": base_model, "actor": actor, "reason": reason}
    return _model_event(action=action, **(fields | extra))


def _lineage(adapter: AdapterVersion) -> dict[str, Any]:
    """The fields of a `model` event that say what `adapter` was trained from and how it scored."""
    return {"base_model": adapter.base_model, "dataset_digest": adapter.dataset_digest, "metrics": adapter.metrics}


def _model_event(**fields: Any) -> ModelEvent:
    """A `model` event with a fresh id, happening now."""
    return ModelEvent(event_id=str(uuid.uuid4()), occurred_at=utcnow(), **fields)


def promote(
    conn: psycopg.Connection,
    *,
    version: str,
    actor: str,
    actor_kind: str = "service",
    reason: str = "",
    publisher: Publisher | None = None,
) -> ModelEvent:
    """Make `version` the serving adapter of its base model (the old one is retired); audited, then published."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK,))
        target = get(conn, version=version)
        if target.status == "promoted":
            raise PromotionError(f"adapter {version!r} is already serving {target.base_model}; nothing to do")
        previous = _set_serving(conn, base_model=target.base_model, version=version)
        event = _record_change(
            conn, action="promoted", adapter=target, other=previous, actor=actor, actor_kind=actor_kind, reason=reason
        )
    _publish(publisher, event)
    return event


def rollback(
    conn: psycopg.Connection,
    *,
    base_model: str,
    actor: str,
    actor_kind: str = "service",
    reason: str = "",
    publisher: Publisher | None = None,
) -> ModelEvent:
    """Retire the serving adapter and restore the one it replaced (or the base model); audited, then published."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK,))
        current = serving(conn, base_model=base_model)
        if current is None:
            raise PromotionError(f"the base model {base_model!r} is serving; there is no adapter to roll back")
        row = conn.execute(
            "SELECT previous FROM adapter_promotions WHERE base_model = %s AND action = 'promoted' AND version = %s "
            "ORDER BY id DESC LIMIT 1",
            (base_model, current.version),
        ).fetchone()
        prior = row[0] if row else None
        _set_serving(conn, base_model=base_model, version=prior)
        event = _record_change(
            conn, action="rolled_back", adapter=current, other=prior, actor=actor, actor_kind=actor_kind, reason=reason
        )
    _publish(publisher, event)
    return event


def candidate_event(version: AdapterVersion, *, actor: str) -> ModelEvent:
    """The `model` event announcing a newly registered candidate."""
    return _model_event(
        action="candidate", version=version.version, previous=version.parent, actor=actor, **_lineage(version)
    )


def publish_event(publisher: Publisher, event: ModelEvent) -> None:
    """Put a model event on the `model` topic and wait for the broker."""
    _publish(publisher, event)
