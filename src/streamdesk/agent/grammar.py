"""The JSON schema of one agent step: one `anyOf` branch per tool the principal may use, plus `reply`.

Decoding under this schema makes a forbidden tool impossible to generate, not merely refused afterwards.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from streamdesk.agent.exceptions import GrammarError
from streamdesk.agent.models import REPLY_TOOL, Tool

MAX_REPLY_CHARS = 1200


def reply_arguments_schema(*, citation_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Arguments of the final answer: a message, and citations drawn from `citation_ids` when given."""
    citations: dict[str, Any]
    if citation_ids is None:
        citations = {"type": "array", "items": {"type": "string"}}
    elif citation_ids:
        citations = {"type": "array", "items": {"enum": list(dict.fromkeys(citation_ids))}}
    else:
        citations = {"type": "array", "maxItems": 0}
    return {
        "type": "object",
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": MAX_REPLY_CHARS},
            "citations": citations,
        },
        "required": ["message", "citations"],
        "additionalProperties": False,
    }


def tool_branch(*, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The `anyOf` branch of one tool: `{"tool": <const name>, "arguments": <its schema>}`."""
    return {
        "type": "object",
        "properties": {"tool": {"const": name}, "arguments": arguments},
        "required": ["tool", "arguments"],
        "additionalProperties": False,
    }


def step_schema(
    *, tools: Sequence[Tool], allowed: Collection[str], citation_ids: Sequence[str] | None = None
) -> dict[str, Any]:
    """The schema of one step: a branch per tool in `allowed` (registry order), then the `reply` branch.

    `allowed` is what the policy permits the principal (`policy.permitted_tools`); `citation_ids`, when
    given, are the only chunk ids a reply may cite (the ones retrieved for this ticket). String `maxLength`
    is left out (the registry still validates it): xgrammar unrolls it, 2.5 s to compile per 1000 characters.
    """
    by_name = {tool.name: tool for tool in tools}
    if REPLY_TOOL in by_name:
        raise GrammarError(f"a tool is named {REPLY_TOOL!r}, which is reserved for the final answer; rename it")
    unknown = sorted(set(allowed) - set(by_name))
    if unknown:
        raise GrammarError(f"allowed tools {unknown} are not registered; pass names from the tool registry")
    branches = [tool_branch(name=tool.name, arguments=tool.parameters) for tool in tools if tool.name in allowed]
    branches.append(tool_branch(name=REPLY_TOOL, arguments=reply_arguments_schema(citation_ids=citation_ids)))
    return {"anyOf": [without_max_length(branch) for branch in branches]}


def without_max_length(schema: Any) -> Any:
    """`schema` without any string `maxLength` (xgrammar unrolls it: slow to compile)."""
    if isinstance(schema, dict):
        return {key: without_max_length(value) for key, value in schema.items() if key != "maxLength"}
    if isinstance(schema, list):
        return [without_max_length(value) for value in schema]
    return schema


def schema_tools(schema: dict[str, Any]) -> list[str]:
    """The tool names a step schema can generate, `reply` included."""
    return [branch["properties"]["tool"]["const"] for branch in schema.get("anyOf", [])]
