"""KTO + LoRA (or QLoRA) settings of one retrain; each field's help text is what the CLI shows."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from streamdesk.training.exceptions import TrainingConfigError
from streamdesk.training.trainer_config import LoraTrainerConfig

TrainQuantization = Literal["none", "4bit"]
ENV_PREFIX = "STREAMDESK_KTO__"
MIN_BATCH = 4
"""KTO estimates its KL term from the other completions of a batch; fewer than this makes it noise."""


@dataclass
class KTOTrainingConfig(LoraTrainerConfig):
    """How one adapter is trained: optimiser, KTO, LoRA, quantization, replay and reproducibility."""

    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate of the LoRA weights."})
    beta: float = field(default=0.1, metadata={"help": "KTO beta: higher keeps the adapter closer to the base model."})
    max_length: int = field(default=128, metadata={"help": "Tokens per example (prompt + completion), cut at right."})
    batch_size: int = field(default=4, metadata={"help": f"Examples per step; at least {MIN_BATCH} for KTO's KL."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training set (ignored with max_steps)."})
    max_steps: int = field(default=-1, metadata={"help": "Optimiser steps; -1 trains for `epochs`."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "v_proj"], metadata={"help": "Linear layers that get LoRA weights."}
    )
    quantization: TrainQuantization = field(
        default="none", metadata={"help": "'none': fp32 base (LoRA); '4bit': bitsandbytes NF4 base (QLoRA)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of LoRA init, data order and replay sample."})
    replay_fraction: float = field(
        default=0.5, metadata={"help": "Older examples replayed per new example, against forgetting."}
    )
    replay_max: int = field(default=256, metadata={"help": "Most older examples replayed in one retrain."})
    from_serving: bool = field(
        default=True,
        metadata={
            "help": "Start from the serving adapter's weights (also KTO's reference model); False trains a fresh LoRA."
        },
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads for torch; None keeps its default."})
    logging_steps: int = field(default=1, metadata={"help": "Record metrics every this many steps."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar while training."})

    def __post_init__(self) -> None:
        if self.batch_size < MIN_BATCH:
            raise TrainingConfigError(
                f"batch_size {self.batch_size} is below {MIN_BATCH}; KTO's KL estimate needs at least "
                f"{MIN_BATCH} examples per step, so set batch_size >= {MIN_BATCH}"
            )
        if self.quantization not in ("none", "4bit"):
            raise TrainingConfigError(f"quantization {self.quantization!r} is unknown; use 'none' or '4bit'")
        if self.max_length < 16:
            raise TrainingConfigError(f"max_length {self.max_length} leaves no room for a completion; use >= 16")
        if not 0 <= self.replay_fraction <= 10:
            raise TrainingConfigError(f"replay_fraction {self.replay_fraction} is out of range; use 0-10")
        if self.max_steps == 0 or self.epochs <= 0:
            raise TrainingConfigError("max_steps 0 or epochs <= 0 trains nothing; set max_steps=-1 and epochs > 0")

    @classmethod
    def from_env(cls, **overrides: Any) -> KTOTrainingConfig:
        """Settings from `STREAMDESK_KTO__<FIELD>` variables (JSON values, e.g. `["q_proj"]`), then `overrides`."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = os.environ.get(ENV_PREFIX + item.name.upper())
            if raw is not None:
                try:
                    values[item.name] = json.loads(raw)
                except ValueError:
                    values[item.name] = raw
        return cls(**(values | overrides))

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object (stored with each adapter version)."""
        return asdict(self)

    def to_trl(self, *, output_dir: Path, desirable_weight: float, undesirable_weight: float) -> Any:
        """TRL's KTOConfig for these settings, on CPU in fp32, saving nothing by itself.

        Batches follow `kto_trainer.ordered` (sequential sampling), not a second shuffle of the trainer's own.
        """
        from trl import KTOConfig

        return KTOConfig(
            **self.trl_arguments(output_dir=output_dir),
            beta=self.beta,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
            logging_steps=self.logging_steps,
            train_sampling_strategy="sequential",
        )
