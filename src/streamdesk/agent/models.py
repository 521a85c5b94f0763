"""Records of the agent: generations, tools and their context, tool calls and the steps of a conversation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamdesk.agent.exceptions import StepParseError
from streamdesk.identity.models import Principal

REPLY_TOOL = "reply"
"""The pseudo-tool that ends a turn with a message to the customer."""

Message = dict[str, str]
ToolKind = Literal["read", "write"]
ToolEffect = Literal["local", "command"]
"""Where a write lands: `local` changes the entity store's copy; `command` asks a system of record (a command)."""


class Generation(BaseModel):
    """One completion of an LLM backend, with its token counts and wall time."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    adapter: str | None = None
    seconds: float
    finish_reason: Literal["stop", "length"] = "stop"
    cached_prompt_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of wall time (prompt processing included)."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ToolContext:
    """On whose behalf a tool runs: the acting principal, tenant, customer and ticket of the conversation.

    `customer_id` set confines customer and order tools to that customer; unset (people) leaves them open.
    """

    actor: str
    tenant: str = "default"
    customer_id: str | None = None
    ticket_source: str | None = None
    ticket_id: str | None = None

    @classmethod
    def for_principal(
        cls, principal: Principal, *, ticket_source: str | None = None, ticket_id: str | None = None
    ) -> ToolContext:
        """The context of a principal: the agent identity is confined to its verified customer, people are not."""
        return cls(
            actor=f"{principal.kind}:{principal.id}",
            tenant=principal.tenant,
            customer_id=principal.customer_id if principal.is_agent else None,
            ticket_source=ticket_source,
            ticket_id=ticket_id,
        )


ToolHandler = Callable[[psycopg.Connection, dict[str, Any], ToolContext], dict[str, Any]]


@dataclass(frozen=True)
class Tool:
    """A tool the agent may call: JSON-Schema arguments, read or write, and whether it is high risk."""

    name: str
    description: str
    parameters: dict[str, Any]
    kind: ToolKind
    handler: ToolHandler = field(repr=False, compare=False)
    high_risk: bool = False
    effect: ToolEffect = "local"
    system: str = ""
    """The system of record a `command` write goes to (its topic is `command.<system>`)."""

    def signature(self) -> str:
        """`name(arg, arg)`: the one-line form the system prompt lists."""
        return f"{self.name}({', '.join(self.parameters.get('properties', {}))})"


def arguments_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema requiring exactly `properties` (every argument given, nothing more)."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


class Reply(BaseModel):
    """The final answer of a turn: a message and the chunk ids it cites."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str
    citations: list[str] = Field(default_factory=list)


class ToolCall(BaseModel):
    """One step the model chose: a tool name and its arguments (`reply` ends the turn)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        """True when the step is the final answer rather than a tool call."""
        return self.tool == REPLY_TOOL

    def reply(self) -> Reply:
        """The final answer carried by a `reply` step."""
        if not self.is_reply:
            raise StepParseError(f"step calls tool {self.tool!r}, not {REPLY_TOOL!r}; check is_reply first")
        try:
            return Reply.model_validate(self.arguments)
        except ValidationError as exc:
            raise StepParseError(f"reply arguments {self.arguments!r} are invalid: {exc.errors()[0]['msg']}") from exc

    @classmethod
    def from_text(cls, text: str) -> ToolCall:
        """Parse model output `{"tool": ..., "arguments": {...}}`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StepParseError(
                f"model output is not JSON ({exc.msg} at char {exc.pos}): {text[:200]!r}; "
                "generate with the step schema so the output is always JSON"
            ) from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise StepParseError(
                f"model output {text[:200]!r} is not a step: {exc.errors()[0]['msg']}; "
                'expected {"tool": NAME, "arguments": {...}}'
            ) from exc


class AgentStep(BaseModel):
    """One step of a conversation: what the model called, what came back, and what generating it cost."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    call: ToolCall
    result: dict[str, Any] | None = None
    error: str | None = None
    generation: Generation | None = None
