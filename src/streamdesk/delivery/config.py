"""Delivery settings: where replies go (Zendesk, the signed webhook sink), how they are retried, ticket statuses."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once
from streamdesk.exceptions import ConfigurationError

TicketStatus = Literal["open", "pending", "hold", "solved"]


class DeliverySettings(BaseSettings):
    """Read from `STREAMDESK_DELIVERY__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_DELIVERY__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    zendesk_url: str | None = Field(
        default=None, description="Zendesk base URL (https://<subdomain>.zendesk.com); replies to `zendesk` tickets."
    )
    zendesk_email: str | None = Field(default=None, description="Agent email for API-token auth (`email/token`).")
    zendesk_api_token: SecretStr | None = Field(default=None, description="Zendesk API token (with zendesk_email).")
    zendesk_oauth_token: SecretStr | None = Field(default=None, description="Zendesk OAuth access token (Bearer).")
    webhook_url: str | None = Field(
        default=None, description="Signed webhook sink for every other source (and Zendesk when no Zendesk URL)."
    )
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key of the webhook sink.")
    reply_status: TicketStatus = Field(default="pending", description="Ticket status set with a reply.")
    follow_up_status: TicketStatus = Field(default="solved", description="Ticket status set with a follow-up.")
    timeout_s: float = Field(default=10.0, gt=0, description="One HTTP request to the helpdesk.")
    retry_for_s: float = Field(
        default=30.0, ge=0, description="Retry an unreachable or busy helpdesk this long, then try again later."
    )
    retry_later_s: float = Field(default=30.0, gt=0, description="Wait before the next round of a reply retrying.")
    sweep_interval_s: float = Field(
        default=5.0, gt=0, description="How often the worker delivers replies due in the table (retries, recoveries)."
    )
    sweep_after_s: float = Field(
        default=10.0, ge=0, description="A queued reply not seen on a topic within this long is delivered anyway."
    )

    @field_validator(
        "zendesk_url",
        "zendesk_email",
        "zendesk_api_token",
        "zendesk_oauth_token",
        "webhook_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (compose's `${X:-}`) means not set."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> DeliverySettings:
        if self.webhook_url and self.webhook_secret is None:
            raise ConfigurationError(
                "STREAMDESK_DELIVERY__WEBHOOK_URL is set without STREAMDESK_DELIVERY__WEBHOOK_SECRET; "
                "the sink verifies an HMAC-SHA256 signature, so set the shared secret"
            )
        return self


@read_once
def get_delivery_settings() -> DeliverySettings:
    """The delivery settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return DeliverySettings()
