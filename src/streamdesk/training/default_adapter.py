"""The adapter `streamdesk up` serves by default: the SFT bootstrap, trained once per machine, gated, promoted.

Training the bootstrap takes minutes on CPU, so the trained adapter is kept in a machine-wide cache
(`STREAMDESK_TRAINING__BOOTSTRAP_CACHE_DIR`, by default `$XDG_CACHE_HOME/streamdesk/adapters`), keyed by the
base model, the digest of the ordered training rows and the training config, as the model conversion is cached:
a second `up`, a fresh state dir or a test run copies it in seconds. The rows are the resolved tickets the desk
has: the τ²-bench retail train split (with ../shared/data also the Bitext routes), or, on a fresh clone without
it, the train split's first actions bundled in `training/data/` (MIT). Every `DEV_EVERY`-th τ² ticket and a
Bitext pool of its own are held out as the gate's dev set: each ticket's gold step is desirable, another ticket's
step undesirable. The existing eval gate judges the registered candidate against the base model on that set, and
the candidate serves only when the gate prefers it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from filelock import FileLock

from streamdesk import config as root_config
from streamdesk.agent import config as agent_config
from streamdesk.agent import model_cache
from streamdesk.feedback import hygiene
from streamdesk.feedback.config import FeedbackSettings, get_feedback_settings
from streamdesk.feedback.models import KtoExample
from streamdesk.kafka import Publisher
from streamdesk.training import registry, scoring, sft, tool_scorer
from streamdesk.training.config import TrainingSettings, get_training_settings
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.models import AdapterVersion
from streamdesk.training.tool_scorer import RoutedTicket

BUNDLED_TAU_TRAIN = Path(__file__).resolve().parent / "data" / "tau2_retail_train_first_actions.jsonl"
DEV_EVERY = 6
"""Every sixth distinct τ² train ticket text (in split order) is held out for the gate, never trained on."""
BITEXT_HELDOUT_PER_INTENT = 20
"""Bitext rows per intent reserved for measuring routing (`eval flywheel`'s held-out pool): never used here."""
BITEXT_TRAIN_PER_INTENT = 25
BITEXT_DEV_PER_INTENT = 5
MARKER = "streamdesk-bootstrap.json"
"""Written last into a finished cache entry; a folder without it is not a usable adapter."""
CACHE_KEY = "bootstrap_cache_key"
"""Config field of a registered bootstrap naming its cache entry, so a database registers one entry once."""
ServeStatus = Literal["promoted", "candidate", "kept"]


@dataclass(frozen=True)
class BootstrapData:
    """The bootstrap's training tickets, the gate's dev tickets, and where they came from (shared or bundled)."""

    train: list[RoutedTicket]
    dev: list[RoutedTicket]
    origin: Literal["shared", "bundled"]


@dataclass(frozen=True)
class CachedAdapter:
    """A finished cache entry: the adapter folder, its key, what it was trained on, and whether it was trained now."""

    path: Path
    key: str
    info: dict[str, Any]
    trained_now: bool


@dataclass(frozen=True)
class ServeOutcome:
    """What `serve` did: the adapter, whether it serves, why, and how long training and gating took."""

    status: ServeStatus
    version: str | None
    reason: str
    trained_now: bool
    seconds: float
    cache_dir: Path | None = None
    gate: dict[str, Any] | None = None

    def describe(self) -> str:
        """One line for `up`'s console."""
        how = "trained now" if self.trained_now else "from the machine cache"
        if self.status == "promoted":
            return f"adapter  {self.version} serves (SFT bootstrap, {how}; {self.reason}; {self.seconds:.0f}s)"
        if self.status == "candidate":
            return f"adapter  base model serves; bootstrap {self.version} stays a candidate: {self.reason}"
        return f"adapter  {self.version} serves ({self.reason})"


def bundled_rows(*, shared_data: Path) -> list[dict[str, Any]]:
    """The bundled τ² rows: the train split's first actions, without the tickets that read like a test ticket."""
    twins = tool_scorer.unique_texts(tool_scorer.taubench_first_actions(shared_data=shared_data, split="test"))
    return [
        {"id": t.id, "text": t.text, "tool": t.tool, "arguments": t.arguments, "customer_id": t.customer_id}
        for t in tool_scorer.taubench_first_actions(shared_data=shared_data, split="train")
        if hygiene.normalise(t.text) not in twins
    ]


def tau_train_tickets(*, shared_data: Path | None) -> tuple[list[RoutedTicket], Literal["shared", "bundled"]]:
    """The τ² train tickets from `shared_data` when it holds the tasks, else the bundled copy."""
    if shared_data is not None and (shared_data / tool_scorer.TAU_TASKS).is_file():
        rows = bundled_rows(shared_data=shared_data)
        origin: Literal["shared", "bundled"] = "shared"
    else:
        rows = [json.loads(line) for line in BUNDLED_TAU_TRAIN.read_text().splitlines() if line.strip()]
        origin = "bundled"
    return [RoutedTicket(source="tau2", group=row["tool"], **row) for row in rows], origin


def bootstrap_data(*, shared_data: Path | None, seed: int = 42) -> BootstrapData:
    """Training and dev tickets: τ² train split (every `DEV_EVERY`-th held out), plus Bitext pools when present."""
    tau, origin = tau_train_tickets(shared_data=shared_data)
    texts = list(dict.fromkeys(hygiene.normalise(t.text) for t in tau))  # twin tasks share a ticket: one side only
    held = set(texts[DEV_EVERY - 1 :: DEV_EVERY])
    train = [t for t in tau if hygiene.normalise(t.text) not in held]
    dev = [t for t in tau if hygiene.normalise(t.text) in held]
    if origin == "shared" and shared_data is not None and (shared_data / tool_scorer.BITEXT_FILE).is_file():
        bitext = tool_scorer.bitext_split(
            shared_data=shared_data,
            eval_per_intent=BITEXT_HELDOUT_PER_INTENT,
            train_per_intent=BITEXT_TRAIN_PER_INTENT,
            feedback_per_intent=BITEXT_DEV_PER_INTENT,
            seed=seed,
        )
        train, dev = train + bitext.sft, dev + bitext.feedback
    return BootstrapData(train=train, dev=dev, origin=origin)


def dev_examples(tickets: list[RoutedTicket], *, settings: FeedbackSettings) -> list[KtoExample]:
    """The gate's dev set: each ticket's gold step (desirable) next to the next other-tool ticket's step (not)."""
    rows = []
    for n, ticket in enumerate(tickets):
        others = [t for t in tickets[n + 1 :] + tickets[:n] if t.tool != ticket.tool]
        if not others:
            continue
        for label, completion in ((True, ticket.completion), (False, others[0].completion)):
            rows.append(
                KtoExample(
                    answer_id=f"dev-{ticket.id}-{label}",
                    source="gold",
                    ticket_id=ticket.id,
                    prompt=ticket.text,
                    completion=completion,
                    label=label,
                    adapter_version=None,
                    policy_version=sft.GOLD_POLICY,
                    decided_by="bootstrap-dev",
                    signal_ids=(),
                )
            )
    return hygiene.prepare(rows, settings=settings)


def bootstrap_config(settings: TrainingSettings) -> sft.SFTTrainingConfig:
    """The default bootstrap's training config: `eval flywheel`'s SFT settings, `bootstrap_max_steps` steps."""
    return sft.SFTTrainingConfig(batch_size=4, max_length=160, max_steps=settings.bootstrap_max_steps, seed=42)


def cache_root(settings: TrainingSettings | None = None) -> Path:
    """The machine-wide folder of trained bootstrap adapters."""
    configured = (settings or get_training_settings()).bootstrap_cache_dir
    if configured is not None:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamdesk" / "adapters"


def base_model_identity(model_dir: Path) -> dict[str, Any]:
    """What names the base model in a cache key: the GGUF it was converted from, or its config's digest."""
    if model_cache.is_converted(model_dir):
        info = model_cache.conversion_info(model_dir)
        return {
            "format": info.get("format"),
            "source": Path(str(info.get("source"))).name,
            "source_bytes": info.get("source_bytes"),
        }
    return {"config_sha256": hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest()}


def cache_key(*, model_dir: Path, digest: str, config: sft.SFTTrainingConfig) -> str:
    """sha256 of the base model, the ordered training rows' digest and the training config (speed knobs aside)."""
    knobs = {k: v for k, v in config.to_json().items() if k not in ("threads", "progress")}
    material = {"base": base_model_identity(model_dir), "data": digest, "config": knobs}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cached_adapter(
    *, tickets: list[RoutedTicket], config: sft.SFTTrainingConfig, model_dir: Path, cache_dir: Path
) -> CachedAdapter:
    """The trained adapter for `tickets` and `config` from the cache, training it first when it is not there.

    File-locked, so two processes asking at once train it once; published by an atomic rename.
    """
    examples = sft.sft_examples(tickets)
    digest = sft.dataset_digest(sft.ordered(examples, seed=config.seed))
    key = cache_key(model_dir=model_dir, digest=digest, config=config)
    target = cache_dir / f"sft-{key[:24]}"
    if (target / MARKER).is_file():
        return CachedAdapter(target, key, json.loads((target / MARKER).read_text()), trained_now=False)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / MARKER).is_file():
            return CachedAdapter(target, key, json.loads((target / MARKER).read_text()), trained_now=False)
        for leftover in cache_dir.glob(f".{target.name}.*"):  # a run killed mid-training; we hold the lock
            shutil.rmtree(leftover, ignore_errors=True)
        staging = cache_dir / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            result = sft.SFTAdapterTrainer(config=config, model_dir=model_dir).train(
                examples=examples, output_dir=staging
            )
            info = {
                "key": key,
                "dataset_digest": result.dataset_digest,
                "examples": result.examples,
                "steps": result.steps,
                "seconds": round(result.seconds, 3),
                "metrics": registry.rounded(result.metrics),
                "config": config.to_json(),
            }
            (staging / MARKER).write_text(json.dumps(info, indent=2))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return CachedAdapter(target, key, info, trained_now=True)


def registered(conn: psycopg.Connection, *, key: str, base_model: str) -> AdapterVersion | None:
    """The adapter this database registered from cache entry `key`, if any."""
    for version in registry.list_versions(conn, base_model=base_model):
        if version.config.get(CACHE_KEY) == key and Path(version.path).is_dir():
            return version
    return None


def register_cached(
    conn: psycopg.Connection,
    *,
    cached: CachedAdapter,
    tickets: list[RoutedTicket],
    adapters_dir: Path,
    base_model: str,
    publisher: Publisher | None,
) -> AdapterVersion:
    """The cache entry copied and registered as a bootstrap candidate (rows kept as gold), or the one already there."""
    found = registered(conn, key=cached.key, base_model=base_model)
    if found is not None:
        return found
    adapters_dir.mkdir(parents=True, exist_ok=True)
    staging = adapters_dir / f".staging-bootstrap-{uuid.uuid4().hex[:8]}"
    shutil.copytree(cached.path, staging)
    info = cached.info
    return sft.register_bootstrap(
        conn,
        staging=staging,
        tickets=tickets,
        adapters_dir=adapters_dir,
        base_model=base_model,
        dataset_digest=str(info["dataset_digest"]),
        config={**info["config"], CACHE_KEY: cached.key},
        metrics={"trainer": "sft", "examples": info["examples"], "steps": info["steps"], "seconds": info["seconds"]}
        | info["metrics"],
        publisher=publisher,
    )


def gate_report(
    *,
    cached: CachedAdapter,
    candidate: AdapterVersion,
    dev: list[KtoExample],
    model_dir: Path,
    settings: TrainingSettings,
    config: sft.SFTTrainingConfig,
) -> dict[str, Any]:
    """The eval gate's report on the candidate against the base model; cached beside the adapter per dev set.

    The verdict depends only on the adapter, the base model, the dev set and the gate settings, so it is
    computed once per machine like the adapter.
    """
    beta = KTOTrainingConfig().beta
    gate_knobs = settings.model_dump(
        include={"max_heldout", "general_texts", "perplexity_tolerance", "min_margin_gain", "min_heldout_per_class"}
    )
    material: dict[str, Any] = {"dev": [hygiene.content_digest(prompt=e.prompt, completion=e.completion) for e in dev]}
    material |= {"label": [e.label for e in dev], "gate": gate_knobs, "beta": beta, "max_length": config.max_length}
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]
    path = cached.path / f"gate-{digest}.json"
    if path.is_file():
        return dict(json.loads(path.read_text()), cached=True)
    report = scoring.evaluate(
        model_dir=model_dir,
        candidate=candidate.version,
        candidate_dir=Path(candidate.path),
        serving=None,
        serving_dir=None,
        heldout=dev,
        settings=settings,
        beta=beta,
        max_length=config.max_length,
        threads=config.threads,
    ).to_json()
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    staging.write_text(json.dumps(report, indent=2))
    os.replace(staging, path)
    return report


def interleaved(examples: list[KtoExample]) -> list[KtoExample]:
    """Desirable and undesirable examples alternating, so the gate's `max_heldout` cut keeps both classes."""
    good = [e for e in examples if e.label]
    bad = [e for e in examples if not e.label]
    mixed = [e for pair in zip(good, bad, strict=False) for e in pair]
    return mixed + good[len(mixed) // 2 :] + bad[len(mixed) // 2 :]


def serve(
    conn: psycopg.Connection,
    *,
    shared_data: Path | None,
    config: sft.SFTTrainingConfig | None = None,
    settings: TrainingSettings | None = None,
    model_dir: Path | None = None,
    adapters_dir: Path | None = None,
    base_model: str = agent_config.MODEL_CACHE_NAME,
    publisher: Publisher | None = None,
) -> ServeOutcome:
    """Make the gate-preferred bootstrap the serving adapter of a database that serves none yet.

    An adapter already serving (a previous run's bootstrap, a promoted KTO retrain) is kept. Otherwise the
    cached bootstrap (trained now if the cache lacks it) is registered, gated against the base model on the dev
    set and promoted when the gate passes; a candidate the gate refused stays registered for inspection.
    """
    started = time.perf_counter()
    current = registry.serving(conn, base_model=base_model)
    if current is not None:
        return ServeOutcome("kept", current.version, "promoted earlier; the registry keeps it", False, 0.0)
    settings = settings or get_training_settings()
    config = config or bootstrap_config(settings)
    model_dir = model_dir or model_cache.ensure_model()
    data = bootstrap_data(shared_data=shared_data, seed=config.seed)
    cache_dir = cache_root(settings)
    cached = cached_adapter(tickets=data.train, config=config, model_dir=model_dir, cache_dir=cache_dir)
    candidate = register_cached(
        conn,
        cached=cached,
        tickets=data.train,
        adapters_dir=adapters_dir or root_config.adapters_dir(),
        base_model=base_model,
        publisher=publisher,
    )
    dev = interleaved(dev_examples(data.dev, settings=get_feedback_settings()))
    report = candidate.gate or gate_report(
        cached=cached, candidate=candidate, dev=dev, model_dir=model_dir, settings=settings, config=config
    )
    if candidate.gate is None:
        registry.record_gate(conn, version=candidate.version, report=report)
    seconds = time.perf_counter() - started
    if not report.get("passed"):
        reason = "; ".join(report.get("reasons") or []) or "the eval gate did not pass"
        return ServeOutcome("candidate", candidate.version, reason, cached.trained_now, seconds, cache_dir, report)
    registry.promote(
        conn,
        version=candidate.version,
        actor=sft.BOOTSTRAP_ACTOR,
        reason=f"SFT bootstrap ({data.origin} data): the eval gate prefers it to the base model",
        publisher=publisher,
    )
    reason = "the eval gate prefers it to the base model"
    return ServeOutcome("promoted", candidate.version, reason, cached.trained_now, seconds, cache_dir, report)
