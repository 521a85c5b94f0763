"""The retrain pipeline: select and train, register the candidate, gate it, promote; live feedback and rollback.

`run_retrain` takes minutes on CPU, so it wants an autocommit connection: every step commits on its
own (the run's status, the candidate, the examples it used, the gate report, the promotion) and no
transaction stays open while the model trains.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from streamdesk import config as root_config
from streamdesk.agent import config as agent_config
from streamdesk.agent import model_cache
from streamdesk.contracts import DataclassRecord, utcnow
from streamdesk.feedback import hygiene
from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings, get_feedback_settings
from streamdesk.feedback.models import KtoExample
from streamdesk.kafka import Publisher
from streamdesk.training import gate, registry, scoring
from streamdesk.training.config import TrainingSettings, get_training_settings
from streamdesk.training.exceptions import NotEnoughDataError, TrainingError
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.kto_trainer import KTOAdapterTrainer, replay_sample
from streamdesk.training.models import LiveScore, ModelEvent, RetrainRequest

log = logging.getLogger(__name__)
BASE_MODEL = agent_config.MODEL_CACHE_NAME
GATE_ACTOR = "retrain-gate"
ROLLBACK_ACTOR = "live-feedback"
POSITIVE_SQL = "kind IN ('thumbs_up', 'accepted') OR (kind = 'csat' AND rating >= %(high)s)"
NEGATIVE_SQL = "kind IN ('thumbs_down', 'rejected', 'edited', 'reopened') OR (kind = 'csat' AND rating <= %(low)s)"


@dataclass(frozen=True)
class TrainingSet:
    """What one retrain trains on: new examples (deduplicated, capped) plus a replay sample of older ones."""

    new: list[KtoExample]
    replay: list[KtoExample]
    capped: int

    @property
    def examples(self) -> list[KtoExample]:
        """New and replayed examples together."""
        return self.new + self.replay


@dataclass(frozen=True)
class RetrainOutcome(DataclassRecord):
    """How a retrain ended: promoted, kept as a candidate, or skipped; with the training and gate numbers."""

    request_id: str
    status: Literal["promoted", "candidate", "skipped"]
    version: str | None
    reason: str
    train: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None


def training_set(conn: psycopg.Connection, *, config: KTOTrainingConfig, settings: FeedbackSettings) -> TrainingSet:
    """New examples (deduplicated, capped per customer and annotator) and a seeded replay sample of trained ones."""
    new = hygiene.deduplicate(feedback.list_examples(conn, trained=False, heldout=False))
    new, capped = hygiene.apply_caps(
        new, per_customer=settings.per_customer_cap, per_annotator=settings.per_annotator_cap
    )
    seen = {e.content_digest for e in new}
    older = [e for e in hygiene.deduplicate(feedback.list_examples(conn, trained=True, heldout=False))]
    older = [e for e in older if e.content_digest not in seen]
    return TrainingSet(new=new, replay=replay_sample(older, new=new, config=config), capped=capped)


def _set_run(conn: psycopg.Connection, request_id: str, **fields: Any) -> None:
    assignments = ", ".join(f"{name} = %s" for name in fields)
    values = [Jsonb(v) if isinstance(v, dict) else v for v in fields.values()]
    conn.execute(f"UPDATE retrain_runs SET {assignments} WHERE request_id = %s", (*values, request_id))


def run_retrain(
    conn: psycopg.Connection,
    *,
    request: RetrainRequest,
    config: KTOTrainingConfig,
    settings: TrainingSettings | None = None,
    feedback_settings: FeedbackSettings | None = None,
    publisher: Publisher | None = None,
    checks: Sequence[gate.GateCheck] = (),
    model_dir: Path | None = None,
    adapters_dir: Path | None = None,
    base_model: str = BASE_MODEL,
    auto_promote: bool = True,
) -> RetrainOutcome:
    """Train a candidate on new + replayed examples, register it, gate it against the serving adapter, promote."""
    if not conn.autocommit:
        raise TrainingError(
            "run_retrain needs an autocommit connection (db.connect(autocommit=True)): training takes minutes "
            "and must not hold a transaction open"
        )
    settings = settings or get_training_settings()
    feedback_settings = feedback_settings or get_feedback_settings()
    adapters_dir = adapters_dir or root_config.adapters_dir()
    conn.execute(
        "INSERT INTO retrain_runs (request_id, reason, requested_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (request.request_id, request.reason, request.requested_at),
    )
    row = conn.execute(
        "SELECT status, version FROM retrain_runs WHERE request_id = %s", (request.request_id,)
    ).fetchone()
    if row is not None and row[0] == "finished":
        return RetrainOutcome(request.request_id, "skipped", row[1], "request already finished (redelivered)")
    _set_run(conn, request.request_id, status="running", started_at=utcnow())
    try:
        outcome = _retrain(
            conn,
            request=request,
            config=config,
            settings=settings,
            feedback_settings=feedback_settings,
            publisher=publisher,
            checks=checks,
            model_dir=model_dir or model_cache.ensure_model(),
            adapters_dir=adapters_dir,
            base_model=base_model,
            auto_promote=auto_promote,
        )
    except Exception as exc:
        _set_run(conn, request.request_id, status="failed", finished_at=utcnow(), details={"error": repr(exc)})
        raise
    _set_run(
        conn,
        request.request_id,
        status="finished",
        finished_at=utcnow(),
        version=outcome.version,
        details=outcome.to_json(),
    )
    return outcome


def _retrain(
    conn: psycopg.Connection,
    *,
    request: RetrainRequest,
    config: KTOTrainingConfig,
    settings: TrainingSettings,
    feedback_settings: FeedbackSettings,
    publisher: Publisher | None,
    checks: Sequence[gate.GateCheck],
    model_dir: Path,
    adapters_dir: Path,
    base_model: str,
    auto_promote: bool,
) -> RetrainOutcome:
    data = training_set(conn, config=config, settings=feedback_settings)
    if len(data.new) < config.batch_size:
        return RetrainOutcome(
            request.request_id,
            "skipped",
            None,
            f"{len(data.new)} new examples cannot fill a batch of {config.batch_size}",
        )
    serving = registry.serving(conn, base_model=base_model)
    staging = adapters_dir / f".staging-{request.request_id}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        init = Path(serving.path) if serving is not None and config.from_serving else None
        result = KTOAdapterTrainer(config=config, model_dir=model_dir).train(
            examples=data.examples, output_dir=staging, init_adapter=init
        )
    except NotEnoughDataError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return RetrainOutcome(request.request_id, "skipped", None, str(exc))
    train = {
        "trainer": "kto",
        "initialised_from": serving.version if init is not None and serving is not None else None,
        "new": len(data.new),
        "replay": len(data.replay),
        "capped": data.capped,
        **result.summary(),
        **registry.rounded(result.metrics),
    }
    candidate = registry.register_candidate(
        conn,
        staging_dir=staging,
        adapters_dir=adapters_dir,
        base_model=base_model,
        parent=serving.version if serving else None,
        dataset_digest=result.dataset_digest,
        config=config.to_json(),
        metrics=train,
    )
    feedback.mark_trained(conn, digests=[e.content_digest for e in data.new], version=candidate.version)
    if publisher is not None:
        registry.publish_event(publisher, registry.candidate_event(candidate, actor=GATE_ACTOR))
    heldout = hygiene.deduplicate(feedback.list_examples(conn, heldout=True))
    report = scoring.evaluate(
        model_dir=model_dir,
        candidate=candidate.version,
        candidate_dir=Path(candidate.path),
        serving=serving.version if serving else None,
        serving_dir=Path(serving.path) if serving else None,
        heldout=heldout,
        settings=settings,
        beta=config.beta,
        max_length=config.max_length,
        checks=checks,
        threads=config.threads,
    )
    registry.record_gate(conn, version=candidate.version, report=report.to_json())
    if report.passed and auto_promote:
        registry.promote(
            conn, version=candidate.version, actor=GATE_ACTOR, reason="eval gate passed", publisher=publisher
        )
        return RetrainOutcome(
            request.request_id, "promoted", candidate.version, "eval gate passed", train, report.to_json()
        )
    reason = "; ".join(report.reasons) or "eval gate passed; automatic promotion is off"
    return RetrainOutcome(request.request_id, "candidate", candidate.version, reason, train, report.to_json())


def live_scores(
    conn: psycopg.Connection, *, versions: Sequence[str | None], settings: FeedbackSettings | None = None
) -> dict[str | None, LiveScore]:
    """Positive and negative live signals on the answers each adapter wrote (None: the base model)."""
    settings = settings or get_feedback_settings()
    bounds = {"high": settings.csat_desirable_min, "low": settings.csat_undesirable_max}
    scores = {}
    for version in versions:
        where = "adapter_version IS NULL" if version is None else "adapter_version = %(version)s"
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE {POSITIVE_SQL}), count(*) FILTER (WHERE {NEGATIVE_SQL}) "
            f"FROM feedback WHERE {where}",
            {**bounds, "version": version},
        ).fetchone()
        positive, negative = row if row else (0, 0)
        scores[version] = LiveScore(version=version, positive=int(positive), negative=int(negative))
    return scores


def previous_of(conn: psycopg.Connection, *, base_model: str, version: str) -> str | None:
    """The adapter `version` replaced when it was last promoted (None: the base model)."""
    row = conn.execute(
        "SELECT previous FROM adapter_promotions WHERE base_model = %s AND action = 'promoted' AND version = %s "
        "ORDER BY id DESC LIMIT 1",
        (base_model, version),
    ).fetchone()
    return None if row is None else row[0]


def check_live_rollback(
    conn: psycopg.Connection,
    *,
    base_model: str = BASE_MODEL,
    settings: TrainingSettings | None = None,
    publisher: Publisher | None = None,
) -> ModelEvent | None:
    """Roll back the serving adapter when its live feedback trails the previous one's by the configured margin."""
    settings = settings or get_training_settings()
    current = registry.serving(conn, base_model=base_model)
    if current is None:
        return None
    previous = previous_of(conn, base_model=base_model, version=current.version)
    scores = live_scores(conn, versions=[current.version, previous])
    decision = gate.rollback_decision(
        current=scores[current.version],
        previous=scores[previous],
        margin=settings.rollback_margin,
        min_feedback=settings.rollback_min_feedback,
    )
    if not decision.roll_back:
        return None
    log.warning("rolling back %s: %s", current.version, decision.reason)
    return registry.rollback(
        conn, base_model=base_model, actor=ROLLBACK_ACTOR, reason=decision.reason, publisher=publisher
    )
