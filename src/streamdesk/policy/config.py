"""Policy settings: the rules file, amount limits, and the tools that always need a supervisor's approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import domain_pack, read_once

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
        default_factory=lambda: {"refund": 100.0, **_pack_approvals().approval_limits},
        description="Amount above which a tool call waits for a supervisor's approval (default: the domain pack's).",
    )
    hard_limits: dict[str, float] = Field(
        default_factory=lambda: {"refund": 2000.0, **_pack_approvals().hard_limits},
        description="Amount above which a tool call is denied outright, approval or not (default: the pack's).",
    )
    always_approve: list[str] = Field(
        default_factory=lambda: list(_pack_approvals().always_approve),
        description="Tools whose every call waits for a supervisor's approval (default: the domain pack's).",
    )


def _pack_approvals() -> Any:
    return domain_pack().approvals


@read_once
def get_policy_settings() -> PolicySettings:
    """The policy settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return PolicySettings()
