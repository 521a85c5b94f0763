"""Guardrail settings: thresholds of the injection detector and extra patterns an operator may add."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once


class GuardrailSettings(BaseSettings):
    """Read from `STREAMDESK_GUARDRAILS__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_GUARDRAILS__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    base64_min_chars: int = Field(default=40, ge=16, description="Shortest base64 run decoded and inspected.")
    base64_min_text: int = Field(
        default=20, ge=1, description="Decoded printable characters that make a hidden payload."
    )
    excerpt_chars: int = Field(default=120, ge=20, description="Longest excerpt of the offending text in a finding.")
    extra_patterns: list[str] = Field(
        default_factory=list, description="More case-insensitive regexes that mark text as an injection."
    )


@read_once
def get_guardrail_settings() -> GuardrailSettings:
    """The guardrail settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return GuardrailSettings()
