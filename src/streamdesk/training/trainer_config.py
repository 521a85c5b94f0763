"""What the LoRA trainer configs (KTO, SFT) share: field help for the CLI, TRL's CPU arguments, the LoRA config."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, cast

from streamdesk.training.exceptions import TrainingConfigError


class LoraTrainerConfig:
    """Base of the trainer config dataclasses, whose fields carry their help text in `metadata["help"]`."""

    learning_rate: float
    max_length: int
    batch_size: int
    epochs: float
    max_steps: int
    lora_r: int
    lora_alpha: int
    lora_dropout: float = 0.0
    target_modules: list[str]
    seed: int
    progress: bool

    @classmethod
    def help_for(cls, name: str) -> str:
        """The help text of field `name` (what the CLI shows)."""
        for item in fields(cast(Any, cls)):
            if item.name == name:
                return str(item.metadata.get("help", ""))
        raise TrainingConfigError(f"{cls.__name__} has no field {name!r}")

    def trl_arguments(self, *, output_dir: Path) -> dict[str, Any]:
        """The TRL trainer arguments every config sets: CPU in fp32, its optimiser, length and seed, nothing saved."""
        return {
            "output_dir": str(output_dir),
            "use_cpu": True,
            "bf16": False,
            "fp16": False,
            "learning_rate": self.learning_rate,
            "max_length": self.max_length,
            "per_device_train_batch_size": self.batch_size,
            "num_train_epochs": self.epochs,
            "max_steps": self.max_steps,
            "seed": self.seed,
            "data_seed": self.seed,
            "gradient_checkpointing": False,
            "save_strategy": "no",
            "report_to": [],
            "disable_tqdm": not self.progress,
            "dataloader_num_workers": 0,
            "dataset_num_proc": None,
        }

    def lora(self) -> Any:
        """The peft LoraConfig for these settings."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.target_modules),
            task_type="CAUSAL_LM",
        )
