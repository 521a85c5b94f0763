"""SFT bootstrap: a LoRA adapter taught first tool calls from resolved tickets, so the agent starts competent.

The data is what the support desk already resolved: the τ²-bench retail train split (ticket -> the first tool
action, with its arguments) and Bitext rows whose intent has a tool (instruction -> the routed tool). Text is
redacted like every other training row. TRL's SFTTrainer trains a PEFT LoRA on the completions only; the
adapter is registered as a candidate (no parent) with the digest of its ordered data, and its rows are stored as
`gold` KTO examples already trained into it, so every later KTO retrain replays them against forgetting.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from streamdesk import config as root_config
from streamdesk.agent import config as agent_config
from streamdesk.agent import model_cache
from streamdesk.feedback import hygiene
from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings, get_feedback_settings
from streamdesk.feedback.models import KtoExample
from streamdesk.kafka import Publisher
from streamdesk.training import registry
from streamdesk.training.exceptions import NotEnoughDataError, TrainingConfigError
from streamdesk.training.models import AdapterVersion
from streamdesk.training.tool_scorer import RoutedTicket, bitext_split, taubench_first_actions, training_text
from streamdesk.training.trainer_config import LoraTrainerConfig

BOOTSTRAP_ACTOR = "sft-bootstrap"
GOLD_POLICY = "gold-v1"
"""Policy version of gold examples: a resolved ticket's first step is desirable."""


@dataclass
class SFTTrainingConfig(LoraTrainerConfig):
    """How the bootstrap adapter is trained; each field's help text is what the CLI shows."""

    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate of the LoRA weights."})
    max_length: int = field(default=160, metadata={"help": "Tokens per example (prompt + tool call), cut at right."})
    batch_size: int = field(default=4, metadata={"help": "Examples per optimiser step."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training set (ignored with max_steps)."})
    max_steps: int = field(default=-1, metadata={"help": "Optimiser steps; -1 trains for `epochs`."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Linear layers that get LoRA weights."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of LoRA init and data order."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads for torch; None keeps its default."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar while training."})

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise TrainingConfigError(f"batch_size {self.batch_size} trains nothing; use >= 1")
        if self.max_length < 32:
            raise TrainingConfigError(f"max_length {self.max_length} cannot hold a ticket and a tool call; use >= 32")
        if self.max_steps == 0 or self.epochs <= 0:
            raise TrainingConfigError("max_steps 0 or epochs <= 0 trains nothing; set max_steps=-1 and epochs > 0")

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object (stored with the adapter version)."""
        return {"trainer": "sft", **asdict(self)}

    def to_trl(self, *, output_dir: Path) -> Any:
        """TRL's SFTConfig: CPU, fp32, loss on the completion only, nothing saved by itself."""
        from trl import SFTConfig

        return SFTConfig(
            **self.trl_arguments(output_dir=output_dir),
            lr_scheduler_type="cosine",
            warmup_steps=2,
            completion_only_loss=True,
            packing=False,
            logging_steps=1,
        )


@dataclass(frozen=True)
class SFTExample:
    """One supervised row: the ticket (redacted) and its gold first step (redacted)."""

    prompt: str
    completion: str

    def to_trl(self) -> dict[str, Any]:
        """The row in TRL's conversational prompt-completion format."""
        return {
            "prompt": [{"role": "user", "content": self.prompt}],
            "completion": [{"role": "assistant", "content": self.completion}],
        }


@dataclass(frozen=True)
class SFTResult:
    """What a bootstrap run produced: the adapter folder, data digest, counts, steps, time and metrics."""

    adapter_dir: Path
    dataset_digest: str
    examples: int
    steps: int
    seconds: float
    metrics: dict[str, float]


def sft_examples(tickets: Sequence[RoutedTicket]) -> list[SFTExample]:
    """Training rows of `tickets`, redacted, without duplicates (first kept)."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for ticket in tickets:
        row = SFTExample(prompt=training_text(ticket.text), completion=training_text(ticket.completion))
        if (row.prompt, row.completion) not in seen:
            seen.add((row.prompt, row.completion))
            rows.append(row)
    return rows


def gold_examples(tickets: Sequence[RoutedTicket], *, version: str, settings: FeedbackSettings) -> list[KtoExample]:
    """The bootstrap tickets as desirable KTO examples trained into `version`: replay anchors for later retrains.

    Redacted and digested like feedback examples, keyed by content (the same ticket stored twice is one row),
    and never held out: the bootstrap adapter has seen them, so they cannot judge it.
    """
    rows = [
        KtoExample(
            answer_id=ticket.id,
            source="gold",
            ticket_id=ticket.id,
            prompt=ticket.text,
            completion=ticket.completion,
            label=True,
            adapter_version=None,
            policy_version=GOLD_POLICY,
            decided_by=f"bootstrap:{version}",
            signal_ids=(),
            customer_id=ticket.customer_id,
        )
        for ticket in tickets
    ]
    ready = hygiene.deduplicate(hygiene.prepare(rows, settings=settings))
    return [replace(e, answer_id=f"gold-{e.content_digest[:32]}", heldout=False, trained_in=version) for e in ready]


def historical_tickets(*, shared_data: Path, train_per_intent: int, seed: int) -> list[RoutedTicket]:
    """The bootstrap's resolved tickets: the τ²-bench retail train split and the Bitext SFT pool."""
    bitext = bitext_split(
        shared_data=shared_data, eval_per_intent=0, train_per_intent=train_per_intent, feedback_per_intent=0, seed=seed
    )
    return taubench_first_actions(shared_data=shared_data, split="train") + bitext.sft


def ordered(examples: Sequence[SFTExample], *, seed: int) -> list[SFTExample]:
    """The rows in training order: sorted by content, then shuffled with `seed`."""
    rows = sorted(examples, key=lambda e: (e.prompt, e.completion))
    random.Random(seed).shuffle(rows)
    return rows


def dataset_digest(examples: Sequence[SFTExample]) -> str:
    """sha256 of the ordered (prompt, completion) rows: the identity of the bootstrap set."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.prompt, e.completion], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


class SFTAdapterTrainer:
    """TRL's SFTTrainer with a fresh LoRA on the converted base model (fp32, CPU)."""

    def __init__(self, *, config: SFTTrainingConfig, model_dir: Path) -> None:
        self.config = config
        self.model_dir = model_dir

    def train(self, *, examples: Sequence[SFTExample], output_dir: Path) -> SFTResult:
        """Train on `examples`; save the adapter (safetensors) and metrics.json in `output_dir`."""
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import SFTTrainer

        config = self.config
        if not examples:
            raise NotEnoughDataError("no bootstrap examples; check the τ²-bench and Bitext files")
        if config.threads:
            torch.set_num_threads(config.threads)
        rows = ordered(examples, seed=config.seed)
        digest = dataset_digest(rows)
        output_dir.mkdir(parents=True, exist_ok=True)
        tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=torch.float32)
        trainer = SFTTrainer(
            model=model,
            args=config.to_trl(output_dir=output_dir / "trainer"),
            train_dataset=Dataset.from_list([row.to_trl() for row in rows]),
            processing_class=tokenizer,
            peft_config=config.lora(),
        )
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
        trained: Any = trainer.model
        trained.save_pretrained(str(output_dir), safe_serialization=True)
        shutil.rmtree(output_dir / "trainer", ignore_errors=True)
        history = [dict(entry) for entry in trainer.state.log_history]
        metrics = {key: float(value) for key, value in output.metrics.items() if isinstance(value, int | float)}
        losses = [float(entry["loss"]) for entry in history if "loss" in entry]
        if losses:
            metrics["first_loss"], metrics["loss"] = losses[0], losses[-1]
        result = SFTResult(
            adapter_dir=output_dir,
            dataset_digest=digest,
            examples=len(rows),
            steps=int(output.global_step),
            seconds=seconds,
            metrics=metrics,
        )
        summary = {**asdict(result), "adapter_dir": str(output_dir), "config": config.to_json(), "log_history": history}
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
        return result


def bootstrap(
    conn: psycopg.Connection,
    *,
    tickets: Sequence[RoutedTicket],
    config: SFTTrainingConfig,
    model_dir: Path | None = None,
    adapters_dir: Path | None = None,
    base_model: str = agent_config.MODEL_CACHE_NAME,
    publisher: Publisher | None = None,
    feedback_settings: FeedbackSettings | None = None,
) -> AdapterVersion:
    """Train the SFT adapter on `tickets`, register it as a candidate with no parent, and keep its rows as gold."""
    adapters_dir = adapters_dir or root_config.adapters_dir()
    staging = adapters_dir / f".staging-sft-{config.seed}-{time.time_ns()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = SFTAdapterTrainer(config=config, model_dir=model_dir or model_cache.ensure_model()).train(
            examples=sft_examples(tickets), output_dir=staging
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return register_bootstrap(
        conn,
        staging=staging,
        tickets=tickets,
        adapters_dir=adapters_dir,
        base_model=base_model,
        dataset_digest=result.dataset_digest,
        config=config.to_json(),
        metrics={
            "trainer": "sft",
            "examples": result.examples,
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            **registry.rounded(result.metrics),
        },
        publisher=publisher,
        feedback_settings=feedback_settings,
    )


def register_bootstrap(
    conn: psycopg.Connection,
    *,
    staging: Path,
    tickets: Sequence[RoutedTicket],
    adapters_dir: Path,
    base_model: str,
    dataset_digest: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    publisher: Publisher | None = None,
    feedback_settings: FeedbackSettings | None = None,
) -> AdapterVersion:
    """Register the trained adapter in `staging` as a candidate with no parent and keep its `tickets` as gold rows."""
    try:
        version = registry.register_candidate(
            conn,
            staging_dir=staging,
            adapters_dir=adapters_dir,
            base_model=base_model,
            parent=None,
            dataset_digest=dataset_digest,
            config=config,
            metrics=metrics,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    gold = gold_examples(tickets, version=version.version, settings=feedback_settings or get_feedback_settings())
    feedback.store_gold(conn, examples=gold, version=version.version)
    if publisher is not None:
        registry.publish_event(publisher, registry.candidate_event(version, actor=BOOTSTRAP_ACTOR))
    return version
