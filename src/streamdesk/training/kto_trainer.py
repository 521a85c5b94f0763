"""Train one LoRA adapter with TRL's KTOTrainer on labelled examples; save it with its curves and metrics.

Reproducible: the examples are put in a fixed order (by content digest, then a seeded shuffle), LoRA is
initialised from the seed, and the dataset digest (sha256 of the ordered rows) is recorded with the
adapter, so the same data and settings give the same adapter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamdesk.feedback import hygiene
from streamdesk.feedback.models import KtoExample
from streamdesk.training import tool_scorer
from streamdesk.training.exceptions import NotEnoughDataError
from streamdesk.training.kto_config import KTOTrainingConfig

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CURVES = ("loss", "rewards/margins", "rewards/chosen", "rewards/rejected", "kl")


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced: the adapter folder, its data digest, counts, weights, time and curves."""

    adapter_dir: Path
    dataset_digest: str
    examples: int
    desirable: int
    undesirable: int
    desirable_weight: float
    undesirable_weight: float
    steps: int
    seconds: float
    metrics: dict[str, float]
    log_history: list[dict[str, Any]] = field(repr=False)
    plot: Path | None = None

    @property
    def examples_per_s(self) -> float:
        """Training examples processed per second of training (epochs counted)."""
        return self.metrics.get("train_samples_per_second", 0.0)

    def summary(self) -> dict[str, Any]:
        """Examples, class counts and weights, steps and seconds: what metrics.json and the registry keep of the run."""
        counts = ("examples", "desirable", "undesirable", "desirable_weight", "undesirable_weight", "steps")
        return {name: getattr(self, name) for name in counts} | {"seconds": round(self.seconds, 3)}


def class_weights(*, desirable: int, undesirable: int) -> tuple[float, float]:
    """KTO (desirable, undesirable) loss weights that balance the classes: the smaller class is up-weighted.

    The result satisfies the KTO paper's recommendation (Eq. 8), λ_D·n_D / (λ_U·n_U) in [1, 4/3].
    """
    if desirable <= 0 or undesirable <= 0:
        return 1.0, 1.0
    if desirable >= undesirable:
        return 1.0, round(desirable / undesirable, 4)
    return round(undesirable / desirable, 4), 1.0


def ordered(examples: Sequence[KtoExample], *, seed: int) -> list[KtoExample]:
    """The examples in the training order: every prefix holds the set's mix of labels and sources.

    Each (label, source) stratum is sorted by content digest and shuffled with `seed`, then the strata are
    interleaved evenly. A round cut short by `max_steps` thus sees the same share of rejected drafts whatever
    the seed; the seed only picks which ones (a plain shuffle let one seed's slice hold twice another's).
    """
    strata: dict[tuple[bool, str], list[KtoExample]] = {}
    for example in sorted(examples, key=lambda e: (e.content_digest, e.answer_id, e.source)):
        strata.setdefault((example.label, example.source), []).append(example)
    rng = random.Random(seed)
    placed = []
    for key in sorted(strata):
        rows = strata[key]
        rng.shuffle(rows)
        placed += [((index + 0.5) / len(rows), key, row) for index, row in enumerate(rows)]
    return [row for _, _, row in sorted(placed, key=lambda item: (item[0], item[1]))]


def dataset_digest(examples: Sequence[KtoExample]) -> str:
    """sha256 of the ordered (prompt, completion, label) rows: the identity of a training set."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.prompt, e.completion, e.label], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def replay_sample(
    older: Sequence[KtoExample], *, new: Sequence[KtoExample], config: KTOTrainingConfig
) -> list[KtoExample]:
    """A seeded sample of already-trained examples to mix in: `replay_fraction` per new one, at most `replay_max`.

    Desirable older examples of an action the new examples reject come first, one per rejection: a call that
    is right on some tickets and wrong on others must not be pushed down everywhere by its rejections.
    """
    wanted = min(config.replay_max, math.ceil(len(new) * config.replay_fraction), len(older))
    rng = random.Random(config.seed + 1)
    pool = sorted(older, key=lambda e: e.content_digest)
    rng.shuffle(pool)
    rejected = Counter(action(e.completion) for e in new if not e.label)
    anchors: list[KtoExample] = []
    for example in pool:
        key = action(example.completion)
        if example.label and rejected[key] > 0 and len(anchors) < wanted:
            rejected[key] -= 1
            anchors.append(example)
    chosen = {id(example) for example in anchors}
    return anchors + [e for e in pool if id(e) not in chosen][: wanted - len(anchors)]


def action(completion: str) -> str:
    """What a completion does: the tool a step calls, else its normalised text."""
    return tool_scorer.called_tool(completion) or hygiene.normalise(completion)


class KTOAdapterTrainer:
    """TRL's KTOTrainer with a fresh LoRA on the converted base model (fp32, or NF4 for QLoRA)."""

    def __init__(self, *, config: KTOTrainingConfig, model_dir: Path) -> None:
        self.config = config
        self.model_dir = model_dir

    def load_model(self, *, init_adapter: Path | None = None) -> tuple[Any, Any]:
        """The tokenizer and base model, quantized to NF4 and prepared for k-bit training when configured.

        With `init_adapter`, the model carries that LoRA (trainable) as its `default` adapter; KTOTrainer
        then keeps a frozen copy of it as the reference model.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        if self.config.quantization == "4bit":
            from peft import prepare_model_for_kbit_training
            from transformers import BitsAndBytesConfig

            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
            model = AutoModelForCausalLM.from_pretrained(str(self.model_dir), quantization_config=bnb, device_map="cpu")
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=torch.float32)
        if init_adapter is not None:
            from peft import PeftModel

            return tokenizer, PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        return tokenizer, model

    def train(
        self, *, examples: Sequence[KtoExample], output_dir: Path, init_adapter: Path | None = None
    ) -> TrainResult:
        """Train on `examples` and save the adapter (safetensors), metrics.json and curves.png in `output_dir`.

        `init_adapter` (a saved LoRA folder) continues that adapter instead of training a fresh one.
        """
        import torch
        from datasets import Dataset
        from trl import KTOTrainer

        config = self.config
        if len(examples) < config.batch_size:
            raise NotEnoughDataError(
                f"{len(examples)} examples cannot fill one batch of {config.batch_size}; "
                "collect more feedback or lower batch_size"
            )
        if config.threads:
            torch.set_num_threads(config.threads)
        rows = ordered(examples, seed=config.seed)
        digest = dataset_digest(rows)
        desirable = sum(e.label for e in rows)
        undesirable = len(rows) - desirable
        desirable_weight, undesirable_weight = class_weights(desirable=desirable, undesirable=undesirable)
        dataset = Dataset.from_list([e.to_kto(conversational=True) for e in rows])
        output_dir.mkdir(parents=True, exist_ok=True)
        tokenizer, model = self.load_model(init_adapter=init_adapter)
        trainer = KTOTrainer(
            model=model,
            args=config.to_trl(
                output_dir=output_dir / "trainer",
                desirable_weight=desirable_weight,
                undesirable_weight=undesirable_weight,
            ),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=None if init_adapter is not None else config.lora(),
        )
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
        trained: Any = trainer.model
        for parameter in trained.parameters():
            if parameter.requires_grad:
                parameter.data = parameter.data.to(torch.float32)
        trained.save_pretrained(str(output_dir), safe_serialization=True, selected_adapters=["default"])
        shutil.rmtree(output_dir / "trainer", ignore_errors=True)
        history = [dict(entry) for entry in trainer.state.log_history]
        metrics = {key: float(value) for key, value in output.metrics.items() if isinstance(value, int | float)}
        metrics.update(_last_values(history))
        result = TrainResult(
            adapter_dir=output_dir,
            dataset_digest=digest,
            examples=len(rows),
            desirable=desirable,
            undesirable=undesirable,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
            steps=int(output.global_step),
            seconds=seconds,
            metrics=metrics,
            log_history=history,
        )
        save_metrics(result, config=config)
        plot = save_curves(history, path=output_dir / CURVES_FILE)
        return result if plot is None else replace(result, plot=plot)


def _last_values(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The last logged value of each training curve."""
    last: dict[str, float] = {}
    for entry in history:
        for key in CURVES:
            if key in entry:
                last[key] = float(entry[key])
    return last


def save_metrics(result: TrainResult, *, config: KTOTrainingConfig) -> Path:
    """Write metrics.json (summary, settings, per-step log) next to the adapter."""
    path = result.adapter_dir / METRICS_FILE
    summary = {
        "dataset_digest": result.dataset_digest,
        **result.summary(),
        "metrics": result.metrics,
        "config": config.to_json(),
        "log_history": result.log_history,
    }
    path.write_text(json.dumps(summary, indent=2, default=str))
    return path


def save_curves(history: Sequence[dict[str, Any]], *, path: Path) -> Path | None:
    """Plot the training curves (loss, reward margin, rewards, KL) per step to a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed; skipping %s (metrics.json has the same numbers)", path.name)
        return None
    curves = {key: [(e["step"], e[key]) for e in history if key in e and "step" in e] for key in CURVES}
    curves = {key: points for key, points in curves.items() if points}
    if not curves:
        return None
    figure, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3), squeeze=False)
    for axis, (key, points) in zip(axes[0], curves.items(), strict=True):
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
