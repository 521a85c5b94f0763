"""Audit settings: the key that signs record hashes and how often the chain is checkpointed."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.audit.exceptions import InsecureAuditKeyError
from streamdesk.config import read_once

DEV_SIGNING_KEY = "dev-audit-signing-key"


class AuditSettings(BaseSettings):
    """Read from `STREAMDESK_AUDIT__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_AUDIT__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    signing_key: SecretStr = Field(
        default=SecretStr(DEV_SIGNING_KEY),
        description="HMAC key signing each record hash and checkpoint; without it a forged record cannot pass verify.",
    )
    checkpoint_every: int = Field(default=100, ge=1, description="Store a checkpoint after every this many records.")
    verify_batch: int = Field(default=5000, ge=1, description="Records read per query while verifying or exporting.")
    relay_batch: int = Field(default=1000, ge=1, description="Records the audit relay publishes per broker flush.")
    relay_interval_s: float = Field(
        default=1.0, gt=0, description="Longest wait of the audit relay between looks for records (a new one wakes it)."
    )

    @model_validator(mode="after")
    def _refuse_default_key(self) -> AuditSettings:
        key = self.signing_key.get_secret_value()
        environment = os.environ.get("STREAMDESK_ENVIRONMENT", "development")
        if environment == "production" and (key == DEV_SIGNING_KEY or len(key) < 32):
            raise InsecureAuditKeyError(
                "audit.signing_key is the development default or shorter than 32 characters; "
                "set STREAMDESK_AUDIT__SIGNING_KEY to a long random secret before running in production"
            )
        return self


@read_once
def get_audit_settings() -> AuditSettings:
    """The audit settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return AuditSettings()
