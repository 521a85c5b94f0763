"""Policy settings: the rules file, amount limits, and the tools that always need a supervisor's approval."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once

DEFAULT_RULES = Path(__file__).resolve().parent / "rules.yaml"


class PolicySettings(BaseSettings):
    """Read from `STREAMDESK_POLICY__<FIELD>`; dicts and lists as JSON."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_POLICY__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    rules_path: Path = Field(
        default=DEFAULT_RULES, description="YAML table of roles, tool groups and argument ownership."
    )
    approval_limits: dict[str, float] = Field(
        default_factory=lambda: {
            "refund": 100.0,
            "return_delivered_order_items": 200.0,
            "exchange_delivered_order_items": 200.0,
        },
        description="Amount above which a tool call waits for a supervisor's approval.",
    )
    hard_limits: dict[str, float] = Field(
        default_factory=lambda: {
            "refund": 2000.0,
            "return_delivered_order_items": 5000.0,
            "exchange_delivered_order_items": 5000.0,
        },
        description="Amount above which a tool call is denied outright, approval or not.",
    )
    always_approve: list[str] = Field(
        default_factory=lambda: ["cancel_pending_order", "modify_pending_order_payment"],
        description="Tools whose every call waits for a supervisor's approval.",
    )


@read_once
def get_policy_settings() -> PolicySettings:
    """The policy settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return PolicySettings()
