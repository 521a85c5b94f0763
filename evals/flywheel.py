"""`streamdesk eval flywheel`: the whole learning loop on real data, measured on held-out tickets.

1. base: the bare model routes the held-out tickets (Bitext intents never trained on; τ²-bench retail test
   split first actions), by greedy decoding constrained to the tool names (`tool_scorer.ToolScorer`).
2. sft: the SFT bootstrap adapter (τ²-bench train split + a Bitext pool) is registered and promoted; its rows
   are kept as gold examples for replay.
3. feedback: the serving SFT adapter drafts first steps for live train-side tickets (another Bitext pool and
   the τ²-bench train split); a reviewer simulated from ground truth accepts a draft whose tool is right and
   rejects or edits (the edit is the gold step) the others. Tickets, answers and signals go through the real
   stores, the feedback intake and the label policy into KTO examples.
4. kto: `service.run_retrain` trains KTO + LoRA from the serving adapter on those examples plus a replay sample
   of the gold ones (without it the feedback's many rejected drafts of the SFT adapter's favourite τ² tool pushed
   that tool down on tickets where it is right), registers the candidate, and the eval gate decides, with the
   held-out routing metrics as its regression-set check.

It runs in a database of its own on the configured PostgreSQL server (or an embedded one of its own), so a run
neither sees nor leaves data in the platform's database; the adapters live in a work folder.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg

from streamdesk import db
from streamdesk.agent import answers as agent_answers
from streamdesk.agent import model_cache
from streamdesk.config import Settings, get_settings
from streamdesk.contracts import TicketEvent, utcnow
from streamdesk.entities import store as entities
from streamdesk.feedback import hygiene
from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import get_feedback_settings
from streamdesk.feedback.models import FeedbackEvent
from streamdesk.training import gate, registry, scoring, service, sft, tool_scorer, trigger
from streamdesk.training.config import get_training_settings
from streamdesk.training.exceptions import TrainingConfigError
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.tool_scorer import RoutedTicket, ToolScorer

log = logging.getLogger(__name__)
ACTOR = "flywheel"
REVIEWER = "simulated-reviewer"
SOURCE = "flywheel"
PROMPT_VERSION = "flywheel-first-step-1"
REGRESSION_CHECK = "regression_set"
SEEDS = (42, 7, 1234)
"""The seeds `--seeds N` runs, in order: fixed, so a seed-robustness claim names the seeds it was measured on."""
TARGET_GAIN = 0.30
"""How far the KTO adapter's held-out routing accuracy must rise above the base model's."""
Verdict = Literal["accepted", "edited", "rejected"]


@dataclass(frozen=True)
class FlywheelOptions:
    """Sizes, seeds and settings of one flywheel run."""

    shared_data: Path
    eval_per_intent: int = 20
    train_per_intent: int = 25
    feedback_per_intent: int = 15
    sft_epochs: float = 1.0
    sft_max_steps: int = -1
    max_steps: int = 16
    epochs: float = 1.0
    learning_rate: float = 5e-5
    max_length: int = 160
    tau_limit: int | None = None
    sft_batch_size: int = 4
    batch_size: int = 4
    edit_share: float = 0.5
    tolerance: float = 0.0
    seed: int = 42
    threads: int | None = 1
    progress: bool = False

    def __post_init__(self) -> None:
        if min(self.eval_per_intent, self.train_per_intent, self.feedback_per_intent) < 1:
            raise TrainingConfigError("--eval-per-intent, --train-per-intent and --feedback-per-intent must be >= 1")
        if not 0 <= self.edit_share <= 1:
            raise TrainingConfigError(f"edit_share {self.edit_share} is not a share; use 0-1")
        if self.tau_limit is not None and self.tau_limit < 1:
            raise TrainingConfigError(f"tau_limit {self.tau_limit} leaves no τ²-bench task; use >= 1 or None")
        if self.tolerance < 0:
            raise TrainingConfigError(f"tolerance {self.tolerance} is negative; use >= 0")

    def run_knobs(self) -> dict[str, Any]:
        """The settings the SFT and the KTO trainer configs both take."""
        return {"max_length": self.max_length, "seed": self.seed, "threads": self.threads, "progress": self.progress}


@dataclass(frozen=True)
class HeldOut:
    """The held-out evaluation sets: Bitext routing and τ²-bench retail test first actions."""

    bitext: list[RoutedTicket]
    tau_test: list[RoutedTicket]


@dataclass
class Metrics:
    """One model's held-out numbers."""

    routing_accuracy: float
    action_recall: float
    routing_by_intent: dict[str, float]
    action_recall_by_tool: dict[str, float]
    seconds: float = 0.0

    def regression_set(self) -> dict[str, float]:
        """The metrics a candidate must not make worse (higher is better)."""
        return {
            "routing_accuracy": self.routing_accuracy,
            "action_recall": self.action_recall,
            **{f"routing_accuracy/{intent}": value for intent, value in self.routing_by_intent.items()},
        }


@dataclass
class FlywheelReport:
    """Everything one run measured; `to_json` is the command's last line."""

    base: Metrics
    sft: Metrics
    kto: Metrics | None
    regressions: list[str]
    sft_version: str
    kto_version: str | None
    kto_status: str
    gate: dict[str, Any] | None
    feedback: dict[str, Any]
    data: dict[str, int]
    timing_s: dict[str, float] = field(default_factory=dict)
    seed: int = 42

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON object."""
        models = {"base": self.base, "sft": self.sft, "kto": self.kto}
        routing_accuracy = {k: (m.routing_accuracy if m else None) for k, m in models.items()}
        kto = routing_accuracy["kto"]
        return {
            "routing_accuracy": routing_accuracy,
            "action_recall": {k: (m.action_recall if m else None) for k, m in models.items()},
            "regressions": self.regressions,
            "target_met": kto is not None and kto >= self.base.routing_accuracy + TARGET_GAIN and not self.regressions,
            "routing_by_intent": {k: (m.routing_by_intent if m else None) for k, m in models.items()},
            "action_recall_by_tool": {k: (m.action_recall_by_tool if m else None) for k, m in models.items()},
            "adapters": {"sft": self.sft_version, "kto": self.kto_version, "kto_status": self.kto_status},
            "gate": self.gate,
            "feedback": self.feedback,
            "data": self.data,
            "timing_s": {key: round(value, 1) for key, value in self.timing_s.items()},
            "seed": self.seed,
        }


def simulated_verdict(ticket: RoutedTicket, *, chosen_tool: str, edit_share: float, seed: int) -> Verdict:
    """The simulated reviewer: accept a draft calling the gold tool; else edit (share `edit_share`) or reject.

    Whether a wrong draft is edited or rejected is a seeded function of the ticket, so runs repeat.
    """
    if chosen_tool == ticket.tool:
        return "accepted"
    draw = int(hashlib.sha256(f"{seed}:{ticket.id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "edited" if draw < edit_share else "rejected"


def evaluate(router: ToolScorer, heldout: HeldOut, *, adapter: str | None) -> Metrics:
    """Route every held-out ticket with `adapter` (None: the base model) and score the choices."""
    started = time.perf_counter()
    bitext = [router.route(t.text, adapter=adapter).tool for t in heldout.bitext]
    tau = [router.route(t.text, adapter=adapter).tool for t in heldout.tau_test]
    return Metrics(
        routing_accuracy=tool_scorer.accuracy(heldout.bitext, bitext),
        action_recall=tool_scorer.accuracy(heldout.tau_test, tau),
        routing_by_intent=tool_scorer.accuracy_by_group(heldout.bitext, bitext),
        action_recall_by_tool=tool_scorer.accuracy_by_group(heldout.tau_test, tau),
        seconds=time.perf_counter() - started,
    )


def ticket_key(ticket: RoutedTicket) -> str:
    """A ticket id the desk accepts: the routed ticket's id made safe."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", ticket.id)


def collect_feedback(
    conn: psycopg.Connection,
    *,
    router: ToolScorer,
    tickets: Sequence[RoutedTicket],
    adapter: str,
    run_id: str,
    edit_share: float,
    seed: int,
) -> dict[str, Any]:
    """The serving adapter drafts each ticket's first step; the simulated reviewer's signals are stored and labelled."""
    answered_at = utcnow()
    verdicts: Counter[str] = Counter()
    events = []
    answer_ids = []
    for number, ticket in enumerate(tickets):
        route = router.route(ticket.text, adapter=adapter, draft=True)
        key = f"{run_id}-{ticket_key(ticket)}"
        event = TicketEvent(
            event_id=f"{key}-created",
            source=SOURCE,
            ticket_id=key,
            event_type="created",
            version=[1],
            occurred_at=answered_at,
            body=ticket.text,
            customer_id=ticket.customer_id,
        )
        with conn.transaction():
            entities.apply_tickets(conn, [event])
        stored, _ = agent_answers.store_answer(
            conn,
            answer=agent_answers.Answer(
                event_id=event.event_id,
                source=SOURCE,
                ticket_id=key,
                customer_id=ticket.customer_id,
                status="draft",
                text=route.draft or tool_scorer.tool_call(route.tool),
                model=service.BASE_MODEL,
                adapter=adapter,
                prompt_version=PROMPT_VERSION,
                created_at=answered_at,
            ),
        )
        verdict = simulated_verdict(ticket, chosen_tool=route.tool, edit_share=edit_share, seed=seed)
        verdicts[verdict] += 1
        answer_ids.append(stored.answer_id)
        events.append(
            FeedbackEvent(
                event_id=f"{key}-{verdict}",
                answer_id=stored.answer_id,
                ticket_id=key,
                kind=verdict,
                edited_text=ticket.completion if verdict == "edited" else None,
                adapter_version=adapter,
                customer_id=ticket.customer_id,
                annotator_id=REVIEWER,
                occurred_at=answered_at + timedelta(minutes=1 + number % 50),
            )
        )
    with conn.transaction():
        stored_signals = feedback.store_feedback(conn, events=events)
    stats = feedback.relabel(conn, answer_ids=answer_ids)
    examples = [e for e in feedback.list_examples(conn) if e.source != "gold"]
    return {
        "answers": len(answer_ids),
        "signals": stored_signals,
        **{kind: verdicts.get(kind, 0) for kind in ("accepted", "edited", "rejected")},
        "examples": stats.examples,
        "desirable": sum(e.label for e in examples),
        "undesirable": sum(not e.label for e in examples),
        "heldout_examples": sum(e.heldout for e in examples),
    }


class RegressionSetCheck:
    """The gate's extra check: the candidate's held-out routing metrics must not fall below the serving adapter's."""

    def __init__(self, *, router: ToolScorer, heldout: HeldOut, serving: Metrics, tolerance: float) -> None:
        self.router = router
        self.heldout = heldout
        self.serving = serving
        self.tolerance = tolerance
        self.candidate: Metrics | None = None

    def __call__(self, context: gate.GateContext) -> gate.CheckOutcome:
        """Load the candidate, route the held-out tickets, and compare with the serving adapter's numbers."""
        self.router.scorer.load(name=context.candidate, path=context.candidate_dir)
        self.candidate = evaluate(self.router, self.heldout, adapter=context.candidate)
        worse = tool_scorer.regressions(
            candidate=self.candidate.regression_set(), reference=self.serving.regression_set(), tolerance=self.tolerance
        )
        return gate.CheckOutcome(
            name=REGRESSION_CHECK,
            passed=not worse,
            details={
                "worse": worse,
                "candidate": self.candidate.regression_set(),
                "serving": self.serving.regression_set(),
            },
        )


def load_heldout(options: FlywheelOptions) -> tuple[HeldOut, list[RoutedTicket], list[RoutedTicket]]:
    """Held-out sets, the SFT bootstrap tickets and the live feedback tickets; no text is in two of them.

    A few τ²-bench train tasks are near-twins of test tasks whose shortened tickets read the same; they are
    left out of training so the test split stays unseen.
    """
    split = tool_scorer.bitext_split(
        shared_data=options.shared_data,
        eval_per_intent=options.eval_per_intent,
        train_per_intent=options.train_per_intent,
        feedback_per_intent=options.feedback_per_intent,
        seed=options.seed,
    )
    limit = options.tau_limit
    tau_train = tool_scorer.taubench_first_actions(shared_data=options.shared_data, split="train")[:limit]
    tau_test = tool_scorer.taubench_first_actions(shared_data=options.shared_data, split="test")[:limit]
    heldout = HeldOut(bitext=split.heldout, tau_test=tau_test)
    twins = tool_scorer.unique_texts(tau_test)
    tau_train = [t for t in tau_train if hygiene.normalise(t.text) not in twins]
    sft_tickets = tau_train + split.sft
    feedback_tickets = split.feedback + tau_train
    held = tool_scorer.unique_texts(heldout.bitext) | tool_scorer.unique_texts(heldout.tau_test)
    leaked = held & (tool_scorer.unique_texts(sft_tickets) | tool_scorer.unique_texts(feedback_tickets))
    if leaked:
        raise TrainingConfigError(
            f"{len(leaked)} held-out tickets are also training tickets, e.g. {sorted(leaked)[0]!r}"
        )
    return heldout, sft_tickets, feedback_tickets


def run(conn: psycopg.Connection, *, options: FlywheelOptions, work_dir: Path) -> FlywheelReport:
    """Run base -> SFT -> simulated feedback -> KTO on `conn` (an empty migrated database); report held-out numbers."""
    timing: dict[str, float] = {}
    started = time.perf_counter()
    model_dir = model_cache.ensure_model()
    adapters_dir = work_dir / "adapters"
    heldout, sft_tickets, feedback_tickets = load_heldout(options)
    scorer = scoring.AdapterScorer(model_dir=model_dir, max_length=options.max_length, threads=options.threads)
    router = ToolScorer(scorer)

    base = evaluate(router, heldout, adapter=None)
    timing["base_eval"] = base.seconds
    log.info("base: routing %.3f, action recall %.3f", base.routing_accuracy, base.action_recall)

    mark = time.perf_counter()
    sft_config = sft.SFTTrainingConfig(
        epochs=options.sft_epochs,
        max_steps=options.sft_max_steps,
        batch_size=options.sft_batch_size,
        **options.run_knobs(),
    )
    bootstrap = sft.bootstrap(
        conn, tickets=sft_tickets, config=sft_config, model_dir=model_dir, adapters_dir=adapters_dir
    )
    timing["sft_train"] = time.perf_counter() - mark
    scorer.load(name=bootstrap.version, path=Path(bootstrap.path))
    sft_metrics = evaluate(router, heldout, adapter=bootstrap.version)
    timing["sft_eval"] = sft_metrics.seconds
    worse = tool_scorer.regressions(candidate=sft_metrics.regression_set(), reference=base.regression_set())
    registry.promote(
        conn,
        version=bootstrap.version,
        actor=ACTOR,
        reason=f"SFT bootstrap: held-out routing {sft_metrics.routing_accuracy} vs base {base.routing_accuracy}"
        + (f"; worse on {worse}" if worse else ""),
    )
    log.info(
        "sft %s: routing %.3f, recall %.3f", bootstrap.version, sft_metrics.routing_accuracy, sft_metrics.action_recall
    )

    mark = time.perf_counter()
    run_id = uuid.uuid4().hex[:8]
    collected = collect_feedback(
        conn,
        router=router,
        tickets=feedback_tickets,
        adapter=bootstrap.version,
        run_id=run_id,
        edit_share=options.edit_share,
        seed=options.seed,
    )
    timing["feedback"] = time.perf_counter() - mark

    mark = time.perf_counter()
    check = RegressionSetCheck(router=router, heldout=heldout, serving=sft_metrics, tolerance=options.tolerance)
    config = KTOTrainingConfig.from_env(
        max_steps=options.max_steps,
        epochs=options.epochs,
        learning_rate=options.learning_rate,
        batch_size=options.batch_size,
        **options.run_knobs(),
    )
    request = trigger.request_retrain(conn, reason="manual", pending=feedback.pending_balance(conn), requested_by=ACTOR)
    outcome = service.run_retrain(
        conn,
        request=request,
        config=config,
        settings=get_training_settings(),
        feedback_settings=get_feedback_settings(),
        checks=[check],
        model_dir=model_dir,
        adapters_dir=adapters_dir,
    )
    kto = check.candidate
    if kto is None and outcome.version is not None:
        candidate = registry.get(conn, version=outcome.version)
        scorer.load(name=candidate.version, path=Path(candidate.path))
        kto = evaluate(router, heldout, adapter=candidate.version)
    timing["kto_train_and_gate"] = time.perf_counter() - mark
    regressions = (
        []
        if kto is None
        else tool_scorer.regressions(
            candidate=kto.regression_set(), reference=sft_metrics.regression_set(), tolerance=options.tolerance
        )
    )
    if outcome.gate is not None and any("perplexity" in reason for reason in _gate_reasons(outcome.gate)):
        regressions.append("general_text_perplexity")
    timing["total"] = time.perf_counter() - started
    return FlywheelReport(
        base=base,
        sft=sft_metrics,
        kto=kto,
        regressions=sorted(regressions),
        sft_version=bootstrap.version,
        kto_version=outcome.version,
        kto_status=outcome.status,
        gate=_gate_summary(outcome.gate, outcome.reason),
        feedback={**collected, "train": outcome.train},
        data={
            "bitext_heldout": len(heldout.bitext),
            "tau2_test": len(heldout.tau_test),
            "sft_tickets": len(sft_tickets),
            "feedback_tickets": len(feedback_tickets),
        },
        timing_s=timing,
        seed=options.seed,
    )


def seed_line(report: FlywheelReport) -> str:
    """One human line per seed: each metric's base / sft / kto, and the regressions."""
    line = report.to_json()
    parts = [
        f"{metric} {' / '.join('-' if v is None else f'{v:.3f}' for v in line[metric].values())}"
        for metric in ("routing_accuracy", "action_recall")
    ]
    return f"seed {report.seed}: {'; '.join(parts)} (base / sft / kto); regressions {report.regressions}"


def seeds_summary(reports: Sequence[FlywheelReport]) -> dict[str, Any]:
    """The multi-seed report: per seed each metric's base / sft / kto and regressions; met only if every seed met."""
    runs = {str(report.seed): report.to_json() for report in reports}
    keep = ("routing_accuracy", "action_recall", "regressions", "target_met", "adapters", "feedback", "timing_s")
    return {
        "seeds": [report.seed for report in reports],
        "regressions": {seed: line["regressions"] for seed, line in runs.items()},
        "target_met": all(line["target_met"] for line in runs.values()),
        "runs": {seed: {key: line[key] for key in keep} for seed, line in runs.items()},
    }


def _gate_reasons(report: dict[str, Any]) -> list[str]:
    return [str(reason) for reason in report.get("reasons", [])]


def _gate_summary(report: dict[str, Any] | None, reason: str) -> dict[str, Any] | None:
    if report is None:
        return {"passed": False, "reasons": [reason]}
    keep = ("reward_margin", "likelihood_gap", "perplexity", "examples")
    return {
        "passed": report.get("passed"),
        "reasons": _gate_reasons(report),
        "candidate": {k: v for k, v in (report.get("candidate") or {}).items() if k in keep},
        "serving": {k: v for k, v in (report.get("serving") or {}).items() if k in keep},
    }


@contextmanager
def run_database(
    settings: Settings | None = None, *, server_url: str | None = None, keep: bool = False
) -> Iterator[str]:
    """A freshly created and migrated database on the configured server; dropped afterwards.

    Without DATABASE_URL it runs on an embedded PostgreSQL of its own (`<state dir>/flywheel/postgres`), so the
    platform's embedded server can start and stop independently during the long run.
    """
    from sqlalchemy.engine import make_url

    from streamdesk.runtime.embedded import EmbeddedDatabase

    settings = settings or get_settings()
    embedded = None
    url = server_url or settings.database.url
    if not url:
        embedded = EmbeddedDatabase(settings.state_dir / "flywheel" / "postgres").start()
        url = embedded.url
    name = f"streamdesk_flywheel_{uuid.uuid4().hex[:10]}"
    parsed = make_url(db.libpq_url(url).replace("postgresql://", "postgresql+psycopg://", 1))
    run_url = parsed.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(db.libpq_url(url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        db.migrate(run_url)
        yield run_url
    finally:
        if not keep:
            with psycopg.connect(db.libpq_url(url), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded.stop()


def run_flywheel(
    options: FlywheelOptions, *, server_url: str | None = None, work_dir: Path | None = None, keep: bool = False
) -> FlywheelReport:
    """The flywheel in a database and work folder of its own (both removed afterwards unless `keep`)."""
    folder = work_dir or Path(tempfile.mkdtemp(prefix="streamdesk-flywheel-"))
    try:
        with run_database(server_url=server_url, keep=keep) as url, db.connect(url, autocommit=True) as conn:
            return run(conn, options=options, work_dir=folder)
    finally:
        if not keep and work_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
