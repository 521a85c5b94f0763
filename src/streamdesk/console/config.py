"""Console settings: the key that signs session cookies, how long a sign-in lasts, cookie flags."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once
from streamdesk.console.exceptions import InsecureConsoleKeyError

DEV_SESSION_KEY = "dev-console-session-key"


class ConsoleSettings(BaseSettings):
    """Read from `STREAMDESK_CONSOLE__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_CONSOLE__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    session_key: SecretStr = Field(
        default=SecretStr(DEV_SESSION_KEY),
        description="Secret that signs the session cookie; anyone holding it can forge a sign-in.",
    )
    session_max_age_s: int = Field(
        default=8 * 3600, ge=60, description="Seconds a sign-in lasts before the operator signs in again."
    )
    cookie_name: str = Field(default="streamdesk_console", min_length=1, description="Name of the session cookie.")
    secure_cookie: bool = Field(
        default=False, description="Send the cookie over HTTPS only; turn on behind TLS (always on in production)."
    )

    @model_validator(mode="after")
    def _refuse_default_key(self) -> ConsoleSettings:
        key = self.session_key.get_secret_value()
        if os.environ.get("STREAMDESK_ENVIRONMENT", "development") == "production":
            if key == DEV_SESSION_KEY or len(key) < 32:
                raise InsecureConsoleKeyError(
                    "console.session_key is the development default or shorter than 32 characters; "
                    "set STREAMDESK_CONSOLE__SESSION_KEY to a long random secret before running in production"
                )
            self.secure_cookie = True
        return self


@read_once
def get_console_settings() -> ConsoleSettings:
    """The console settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return ConsoleSettings()
