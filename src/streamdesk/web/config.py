"""API settings: which JWT bearer tokens are accepted (issuer, audience, keys) and where roles come from."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once
from streamdesk.exceptions import ConfigurationError


class ApiSettings(BaseSettings):
    """Read from `STREAMDESK_API__<FIELD>`; JWTs are refused unless a key, an issuer and an audience are set."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_API__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    jwt_issuer: str | None = Field(default=None, description="Required `iss` of JWT bearer tokens.")
    jwt_audience: str | None = Field(default=None, description="Required `aud` of JWT bearer tokens.")
    jwt_hs256_secret: SecretStr | None = Field(
        default=None, description="Shared secret for HS256 tokens (at least 32 bytes); unset refuses HS256."
    )
    jwt_public_key_path: Path | None = Field(
        default=None, description="PEM public key for RS256 tokens; unset refuses RS256 unless a JWKS file is set."
    )
    jwt_jwks_path: Path | None = Field(
        default=None, description="JWKS file (the identity provider's keys, picked by `kid`) for RS256 tokens."
    )
    jwt_roles_claim: str = Field(default="roles", description="Claim holding the caller's roles (list or string).")
    jwt_groups_claim: str = Field(default="groups", description="Claim holding the caller's document groups.")
    jwt_tenant_claim: str = Field(default="tenant", description="Claim naming the caller's tenant.")
    jwt_default_tenant: str = Field(default="default", description="Tenant when the token names none.")
    jwt_leeway_s: float = Field(default=30.0, ge=0, le=300, description="Clock skew allowed on exp and nbf.")

    @model_validator(mode="after")
    def _complete(self) -> ApiSettings:
        if self.jwt_hs256_secret is not None and len(self.jwt_hs256_secret.get_secret_value().encode()) < 32:
            raise ConfigurationError(
                "STREAMDESK_API__JWT_HS256_SECRET is shorter than 32 bytes; use a longer random secret"
            )
        if self.jwt_enabled and not (self.jwt_issuer and self.jwt_audience):
            raise ConfigurationError(
                "JWT keys are configured but STREAMDESK_API__JWT_ISSUER or STREAMDESK_API__JWT_AUDIENCE is not; "
                "set both so tokens from other issuers or for other services are refused"
            )
        return self

    @property
    def jwt_enabled(self) -> bool:
        """True when some key to verify JWTs is configured."""
        return any(v is not None for v in (self.jwt_hs256_secret, self.jwt_public_key_path, self.jwt_jwks_path))


@read_once
def get_api_settings() -> ApiSettings:
    """The API settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return ApiSettings()
