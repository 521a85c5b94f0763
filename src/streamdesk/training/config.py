"""Training settings: when to retrain, how much to replay, what the gate demands, when to roll back."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once


class TrainingSettings(BaseSettings):
    """Read from `STREAMDESK_TRAINING__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_TRAINING__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    min_new_examples: int = Field(default=64, ge=4, description="New labelled examples that trigger a retrain.")
    min_minority_fraction: float = Field(
        default=0.2, ge=0, le=0.5, description="Smaller class's least share of the new examples for a count trigger."
    )
    schedule_hours: float = Field(
        default=24.0, ge=0, description="Retrain at least this often when any new example exists; 0 turns it off."
    )
    min_scheduled_examples: int = Field(default=8, ge=1, description="Fewest new examples a scheduled retrain needs.")
    check_interval_s: float = Field(default=60.0, gt=0, description="How often the learn worker checks the trigger.")
    stale_request_hours: float = Field(
        default=6.0, gt=0, description="A retrain request still open after this long no longer blocks a new one."
    )
    min_heldout_per_class: int = Field(
        default=2, ge=1, description="Held-out desirable and undesirable examples the gate needs at least."
    )
    max_heldout: int = Field(default=64, ge=2, description="Most held-out examples the gate scores.")
    general_texts: int = Field(default=8, ge=1, description="Held-out general passages for the perplexity check.")
    perplexity_tolerance: float = Field(
        default=0.05, ge=0, description="Candidate perplexity may be at most this much worse (0.05 = 5%)."
    )
    min_margin_gain: float = Field(
        default=0.0, ge=0, description="Reward margin the candidate must beat the serving adapter's by."
    )
    rollback_margin: float = Field(
        default=0.10, ge=0, description="Roll back when the new adapter's positive-feedback rate trails by more."
    )
    rollback_min_feedback: int = Field(
        default=20, ge=1, description="Signals each adapter needs before live feedback can trigger a rollback."
    )
    bootstrap_cache_dir: Path | None = Field(
        default=None,
        description="Machine-wide cache of trained SFT bootstrap adapters; unset: $XDG_CACHE_HOME/streamdesk/adapters.",
    )
    bootstrap_max_steps: int = Field(
        default=30,
        ge=-1,
        description=(
            "Optimiser steps (batches of 4) of the default SFT bootstrap; -1 trains one epoch. A whole epoch drifts "
            "the general-text perplexity past the gate's tolerance; 30 steps pass it and keep most of the routing gain."
        ),
    )


@read_once
def get_training_settings() -> TrainingSettings:
    """The training settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return TrainingSettings()
