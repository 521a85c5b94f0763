"""Training fixtures: the clean database, an adapters folder, the converted SmolLM2 and real LoRA adapters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamdesk import db
from streamdesk.agent import model_cache
from tests.feedback.factories import bitext_rows


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the emptied session database."""
    with db.connect(clean_db, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def rows(shared_data: Path) -> list[dict[str, str]]:
    """Bitext customer-support rows (instruction, intent, response)."""
    return bitext_rows(shared_data)


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
