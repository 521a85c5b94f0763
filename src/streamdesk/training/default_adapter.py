"""The adapter `streamdesk up` serves by default: the SFT bootstrap, shipped in the package, gated, promoted.

The bootstrap is trained from one source on every machine: the τ²-bench retail train split's first actions
bundled in `training/data/` (MIT). Bitext routes are left out of it: they are CDLA-Sharing data that the package
would have to bundle under share-alike terms, and ../shared/data is not on every machine. Every `DEV_EVERY`-th
ticket is held out as the gate's dev set: each ticket's gold step is desirable, another ticket's step undesirable.

Training takes minutes on CPU, so trained adapters are kept in a machine-wide cache
(`STREAMDESK_TRAINING__BOOTSTRAP_CACHE_DIR`, by default `$XDG_CACHE_HOME/streamdesk/adapters`), keyed by the
base model, the digest of the ordered training rows and the training config, as the model conversion is cached.
The lookup order is: the machine cache, then the adapter shipped in `training/data/bootstrap/` when its key is
the key computed now (`SHIP_COMMAND` re-creates it), then training. The existing eval gate judges the registered
candidate against the base model on the dev set, and the candidate serves only when the gate prefers it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
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
from streamdesk.training.exceptions import NotPromotedError
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.models import AdapterVersion
from streamdesk.training.tool_scorer import RoutedTicket

BUNDLED_TAU_TRAIN = Path(__file__).resolve().parent / "data" / "tau2_retail_train_first_actions.jsonl"
SHIPPED = BUNDLED_TAU_TRAIN.parent / "bootstrap"
"""The default bootstrap trained and gated once, shipped in the package: one cache entry."""
SHIP_COMMAND = "streamdesk models ship-bootstrap"
DEV_EVERY = 6
"""Every sixth distinct τ² train ticket text (in split order) is held out for the gate, never trained on."""
MARKER = "streamdesk-bootstrap.json"
"""Written last into a finished cache entry; a folder without it is not a usable adapter."""
CACHE_KEY = "bootstrap_cache_key"
"""Config field of a registered bootstrap naming its cache entry, so a database registers one entry once."""
ServeStatus = Literal["promoted", "candidate", "kept"]
AdapterSource = Literal["machine cache", "package", "trained now"]
SOURCE_PHRASE: dict[AdapterSource, str] = {
    "machine cache": "from the machine cache",
    "package": "shipped with the package",
    "trained now": "trained now",
}


@dataclass(frozen=True)
class BootstrapData:
    """The bootstrap's training tickets and the gate's dev tickets."""

    train: list[RoutedTicket]
    dev: list[RoutedTicket]


@dataclass(frozen=True)
class CachedAdapter:
    """A finished cache entry: the adapter folder, its key, what it was trained on, and where it came from."""

    path: Path
    key: str
    info: dict[str, Any]
    source: AdapterSource

    @property
    def trained_now(self) -> bool:
        """Whether this process trained it."""
        return self.source == "trained now"


@dataclass(frozen=True)
class ServeOutcome:
    """What `serve` did: the adapter, whether it serves, why, and how long training and gating took."""

    status: ServeStatus
    version: str | None
    reason: str
    source: AdapterSource | None
    seconds: float
    cache_dir: Path | None = None
    gate: dict[str, Any] | None = None

    @property
    def trained_now(self) -> bool:
        """Whether this `serve` trained the bootstrap."""
        return self.source == "trained now"

    def describe(self) -> str:
        """One line for `up`'s console."""
        how = SOURCE_PHRASE[self.source] if self.source else "kept"
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


def bundled_tickets() -> list[RoutedTicket]:
    """The τ² train tickets bundled with the package: the one source of the default bootstrap on every machine."""
    rows = [json.loads(line) for line in BUNDLED_TAU_TRAIN.read_text().splitlines() if line.strip()]
    return [RoutedTicket(source="tau2", group=row["tool"], **row) for row in rows]


def bootstrap_data() -> BootstrapData:
    """Training and dev tickets from the bundled τ² train split, every `DEV_EVERY`-th distinct ticket held out."""
    tau = bundled_tickets()
    texts = list(dict.fromkeys(hygiene.normalise(t.text) for t in tau))  # twin tasks share a ticket: one side only
    held = set(texts[DEV_EVERY - 1 :: DEV_EVERY])
    train = [t for t in tau if hygiene.normalise(t.text) not in held]
    dev = [t for t in tau if hygiene.normalise(t.text) in held]
    return BootstrapData(train=train, dev=dev)


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


def adapter_key(*, tickets: list[RoutedTicket], config: sft.SFTTrainingConfig, model_dir: Path) -> str:
    """The cache key of an adapter trained on `tickets` with `config` over the base model in `model_dir`."""
    digest = sft.dataset_digest(sft.ordered(sft.sft_examples(tickets), seed=config.seed))
    return cache_key(model_dir=model_dir, digest=digest, config=config)


def default_key(*, model_dir: Path, settings: TrainingSettings | None = None) -> str:
    """The cache key of the default bootstrap, as the code, bundled data and settings compute it now."""
    config = bootstrap_config(settings or get_training_settings())
    return adapter_key(tickets=bootstrap_data().train, config=config, model_dir=model_dir)


def entry_name(key: str) -> str:
    """The folder name of a cache entry (and of the shipped adapter) for `key`."""
    return f"sft-{key[:24]}"


def shipped_entry(key: str) -> Path | None:
    """The adapter shipped in the package, when it was trained for `key`."""
    marker = SHIPPED / entry_name(key) / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("key") == key:
        return marker.parent
    return None


def cached_adapter(
    *, tickets: list[RoutedTicket], config: sft.SFTTrainingConfig, model_dir: Path, cache_dir: Path
) -> CachedAdapter:
    """The adapter for `tickets` and `config` from the machine cache, else the package, else trained now.

    File-locked, so two processes asking at once train it once; published into the cache by an atomic rename.
    """
    key = adapter_key(tickets=tickets, config=config, model_dir=model_dir)
    target = cache_dir / entry_name(key)
    if (target / MARKER).is_file():
        return CachedAdapter(target, key, json.loads((target / MARKER).read_text()), "machine cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / MARKER).is_file():
            return CachedAdapter(target, key, json.loads((target / MARKER).read_text()), "machine cache")
        for leftover in cache_dir.glob(f".{target.name}.*"):  # a run killed mid-training; we hold the lock
            shutil.rmtree(leftover, ignore_errors=True)
        staging = cache_dir / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        shipped = shipped_entry(key)
        source: AdapterSource = "trained now" if shipped is None else "package"
        try:
            if shipped is not None:
                shutil.copytree(shipped, staging)
            else:
                train_adapter(tickets=tickets, config=config, model_dir=model_dir, key=key, output_dir=staging)
            info = json.loads((staging / MARKER).read_text())
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return CachedAdapter(target, key, info, source)


def train_adapter(
    *, tickets: list[RoutedTicket], config: sft.SFTTrainingConfig, model_dir: Path, key: str, output_dir: Path
) -> None:
    """Train the SFT adapter into `output_dir` and write its marker (key, data digest, steps, seconds, metrics)."""
    result = sft.SFTAdapterTrainer(config=config, model_dir=model_dir).train(
        examples=sft.sft_examples(tickets), output_dir=output_dir
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
    (output_dir / MARKER).write_text(json.dumps(info, indent=2))


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
    candidate: str,
    dev: list[KtoExample],
    model_dir: Path,
    settings: TrainingSettings,
    config: sft.SFTTrainingConfig,
) -> dict[str, Any]:
    """The eval gate's report on the candidate against the base model; cached beside the adapter per dev set.

    The verdict depends only on the adapter, the base model, the dev set and the gate settings, so it is
    computed once per machine like the adapter (and shipped with the package's adapter).
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
        candidate=candidate,
        candidate_dir=cached.path,
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
        return ServeOutcome("kept", current.version, "promoted earlier; the registry keeps it", None, 0.0)
    settings = settings or get_training_settings()
    config = config or bootstrap_config(settings)
    model_dir = model_dir or model_cache.ensure_model()
    data = bootstrap_data()
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
        cached=cached, candidate=candidate.version, dev=dev, model_dir=model_dir, settings=settings, config=config
    )
    if candidate.gate is None:
        registry.record_gate(conn, version=candidate.version, report=report)
    seconds = time.perf_counter() - started
    if not report.get("passed"):
        reason = "; ".join(report.get("reasons") or []) or "the eval gate did not pass"
        return ServeOutcome("candidate", candidate.version, reason, cached.source, seconds, cache_dir, report)
    registry.promote(
        conn,
        version=candidate.version,
        actor=sft.BOOTSTRAP_ACTOR,
        reason="SFT bootstrap (bundled τ² train tickets): the eval gate prefers it to the base model",
        publisher=publisher,
    )
    reason = "the eval gate prefers it to the base model"
    return ServeOutcome("promoted", candidate.version, reason, cached.source, seconds, cache_dir, report)


def ship(*, settings: TrainingSettings | None = None, model_dir: Path, threads: int | None = None) -> CachedAdapter:
    """Train (or take from the machine cache) the default bootstrap, gate it, and write it into the package.

    Only an adapter the gate promotes is shipped; the one shipped before is replaced.
    """
    settings = settings or get_training_settings()
    config = replace(bootstrap_config(settings), threads=threads)
    data = bootstrap_data()
    cached = cached_adapter(tickets=data.train, config=config, model_dir=model_dir, cache_dir=cache_root(settings))
    dev = interleaved(dev_examples(data.dev, settings=get_feedback_settings()))
    report = gate_report(
        cached=cached, candidate=entry_name(cached.key), dev=dev, model_dir=model_dir, settings=settings, config=config
    )
    if not report.get("passed"):
        reasons = "; ".join(report.get("reasons") or []) or "the eval gate did not pass"
        raise NotPromotedError(f"the eval gate refuses bootstrap {cached.path.name}, so it is not shipped: {reasons}")
    staging = SHIPPED.with_name(f".{SHIPPED.name}.{uuid.uuid4().hex[:8]}")
    shutil.copytree(cached.path, staging / cached.path.name, ignore=shutil.ignore_patterns(".*", "*.lock", "README.md"))
    shutil.rmtree(SHIPPED, ignore_errors=True)
    os.replace(staging, SHIPPED)
    return replace(cached, path=SHIPPED / cached.path.name, info=cached.info | {"gate": report})
