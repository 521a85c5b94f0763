"""Command settings: the outbox relay's pace and how long a command may wait for its change to come back."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once


class CommandSettings(BaseSettings):
    """Read from `STREAMDESK_COMMANDS__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_COMMANDS__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    relay_batch: int = Field(default=200, ge=1, description="Outbox commands the command relay publishes per flush.")
    relay_interval_s: float = Field(
        default=1.0, gt=0, description="Longest wait of the command relay between looks (a new command wakes it)."
    )
    confirm_timeout_s: float = Field(
        default=300.0,
        ge=0,
        description="A command whose change has not come back through CDC this long after it was written is escalated.",
    )


@read_once
def get_command_settings() -> CommandSettings:
    """The command settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return CommandSettings()
