"""Feedback settings: the label policy's thresholds and the caps that keep one source from dominating training."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once


class FeedbackSettings(BaseSettings):
    """Read from `STREAMDESK_FEEDBACK__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_FEEDBACK__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    reopen_window_days: float = Field(
        default=7.0, gt=0, description="A ticket reopened within this many days of the answer marks it undesirable."
    )
    csat_undesirable_max: int = Field(default=2, ge=1, le=5, description="CSAT at or below this is undesirable.")
    csat_desirable_min: int = Field(default=4, ge=1, le=5, description="CSAT at or above this is desirable.")
    per_customer_cap: int = Field(
        default=20, ge=1, description="Most training examples one customer's tickets may contribute to one run."
    )
    per_annotator_cap: int = Field(
        default=200, ge=1, description="Most training examples whose label one annotator decided, per run."
    )
    heldout_percent: int = Field(
        default=20, ge=0, le=90, description="Share of examples (by content digest) kept out of training for the gate."
    )
    max_text_chars: int = Field(default=4000, ge=100, description="Longer prompts and completions are cut to this.")


@read_once
def get_feedback_settings() -> FeedbackSettings:
    """The feedback settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return FeedbackSettings()
