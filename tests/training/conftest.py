"""Training fixtures: the clean database, an adapters folder, the converted SmolLM2 and real LoRA adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdesk.agent import model_cache


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The converted SmolLM2 folder (converted on the first run, reused afterwards)."""
    return model_cache.ensure_model()
