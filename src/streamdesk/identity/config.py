"""Identity settings: the agent's service id and the operators (people) with their roles and API tokens."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once
from streamdesk.identity.models import Role


class Operator(BaseModel):
    """One person who may use the CLI or API, with the roles they hold."""

    roles: list[Role] = Field(description="Roles held, e.g. ['supervisor'].")
    groups: list[str] = Field(default_factory=list, description="Groups for document access filters.")
    tenant: str = Field(default="default", description="Tenant the operator belongs to.")
    token: SecretStr | None = Field(default=None, description="Bearer token for the HTTP API; unset means CLI only.")


class IdentitySettings(BaseSettings):
    """Read from `STREAMDESK_IDENTITY__<FIELD>`; operators as JSON, e.g. `{"alice": {"roles": ["supervisor"]}}`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_IDENTITY__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    agent_id: str = Field(default="streamdesk-agent", description="Principal id of the agent's service identity.")
    default_tenant: str = Field(default="default", description="Tenant assumed when a ticket names none.")
    operators: dict[str, Operator] = Field(
        default_factory=dict, description="People by id; unknown ids are refused (fail-closed)."
    )


@read_once
def get_identity_settings() -> IdentitySettings:
    """The identity settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return IdentitySettings()
