"""Training fixtures: the clean database, an adapters folder, the converted SmolLM2 and real LoRA adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdesk.agent import model_cache


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The converted SmolLM2 folder (converted on the first run, reused afterwards)."""
    return model_cache.ensure_model()


@pytest.fixture(scope="session")
def lora_adapters(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two real LoRA adapters, `kto-a` and `kto-b`, whose random weights change the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("adapters")
    for seed, name in ((1, "kto-a"), (2, "kto-b")):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(base, config).save_pretrained(str(folder / name))
    return folder
