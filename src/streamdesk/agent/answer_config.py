"""Settings of the answer loop: step budget, knowledge search, and when an answer may go out without review."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.agent.exceptions import AgentError
from streamdesk.agent.reply_gate import ModelText
from streamdesk.config import read_once

SearchMode = Literal["hybrid", "vector", "lexical"]
REPLY_OVERHEAD_CHARS = 80
"""Characters of a reply step besides its message: the JSON keys and brackets, and room for a citation."""


class AnswerSettingsError(AgentError):
    """The answer settings contradict each other (a reply cannot fit the token budget)."""


class AnswerSettings(BaseSettings):
    """Read from `STREAMDESK_ANSWER__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_ANSWER__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    max_steps: int = Field(default=4, ge=1, le=20, description="Model steps per ticket; the last may only reply.")
    router_max_calls: int = Field(default=12, ge=0, le=20, description="Read calls the intent router may propose.")
    max_new_tokens: int = Field(
        default=384, ge=64, description="Token cap of one model step; tools that could need more are not offered."
    )
    reply_max_chars: int = Field(
        default=80,
        ge=20,
        le=1200,
        description="Longest reply message the grammar lets the model write (raise it for a larger model).",
    )
    free_text_chars: int = Field(
        default=32, ge=10, le=1000, description="Longest free-text tool argument (summary, note, address line)."
    )
    max_writes: int = Field(
        default=1, ge=1, le=10, description="Model write steps per ticket; after the last one the answer is composed."
    )
    reply_after_write: bool = Field(
        default=False,
        description=(
            "After the last write, let the model write the reply too (one more model step); false: the answer "
            "states the outcome from the tool results (what changed, what waits for approval)."
        ),
    )
    knowledge_k: int = Field(default=2, ge=0, le=20, description="Passages one knowledge search returns.")
    knowledge_chars: int = Field(default=400, ge=100, description="Characters of each passage shown to the model.")
    search_mode: SearchMode = Field(default="hybrid", description="Retrieval mode of the knowledge search.")
    adapter: str | None = Field(default=None, description="LoRA adapter the model runs with; unset: the base model.")
    auto_reply: bool = Field(
        default=True, description="Let confident answers go out without review; false makes every answer a draft."
    )
    model_text: ModelText = Field(
        default="gated",
        description=(
            "Whether the model's own words may be in a reply: `gated` only when the serving model and adapter "
            "passed the reply-quality gate (`streamdesk eval answers --compose model`), `always`, or `never`; "
            "otherwise the reply is composed from tool facts, quoted knowledge and fixed templates."
        ),
    )
    auto_reply_min_citations: int = Field(
        default=1, ge=0, description="Citations an answer needs before it may go out without review."
    )
    ticket_max_tokens: int = Field(
        default=1024,
        ge=16,
        description=(
            "Tokens of the ticket (subject and body) the model reads; the rest is cut and the cut recorded. "
            "The model's context window cuts further when the whole prompt would not fit."
        ),
    )
    answer_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Wall-clock budget of one answer (look-ups and every model step); past it the ticket is escalated "
            "to a human with the reason audited, so one slow ticket holds the queue up at most this long."
        ),
    )
    worker_batch: int = Field(default=4, ge=1, description="Ticket events the agent worker takes per batch.")
    worker_retry_for_s: float = Field(
        default=60.0, gt=0, description="How long the worker retries a transient failure before crashing."
    )
    worker_max_poll_interval_s: float = Field(
        default=1800.0, gt=0, description="Longest a batch may take before the broker reassigns its partitions."
    )

    @model_validator(mode="after")
    def _reply_fits(self) -> AnswerSettings:
        if self.max_new_tokens < self.reply_max_chars + REPLY_OVERHEAD_CHARS:
            raise AnswerSettingsError(
                f"max_new_tokens={self.max_new_tokens} cannot hold a {self.reply_max_chars}-character reply "
                f"(each token is at least one character, plus ~{REPLY_OVERHEAD_CHARS} for the JSON around it); "
                "raise STREAMDESK_ANSWER__MAX_NEW_TOKENS or lower STREAMDESK_ANSWER__REPLY_MAX_CHARS"
            )
        return self


@read_once
def get_answer_settings() -> AnswerSettings:
    """The answer settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return AnswerSettings()
