"""Step grammars narrowed to what the conversation knows: an id the model writes is an id a tool returned.

The policy already denies an agent's write whose ids came from nowhere; narrowing the grammar as well
means the model cannot even generate one, and cannot re-fetch what it has. The domain pack's
`KnownValues` say which values each id argument may take (for retail: orders by the status the tool
needs, items of those orders, available variants, the user's payment methods); a tool with an id argument
that has no candidate yet is not offered. Only the grammar changes: the registry still validates calls
against the tools' own schemas.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from streamdesk.agent.models import Tool
from streamdesk.agent.packs import KnownValues

UNBOUNDED = re.compile(r"(?<!\\)[+*]|\{\d+,\}")
ID_CHARS = 24
"""Longest text a bounded id pattern matches (the retail pack's ids are at most 17 characters)."""


def worst_case_chars(schema: Any) -> float:
    """The longest JSON text (no escapes) an instance of `schema` can be, as the step grammar prints it.

    Every token the model emits is at least one character, so a step whose every branch fits in
    `max_new_tokens` characters cannot be cut off. Unbounded strings and arrays are infinite.
    """
    if not isinstance(schema, dict):
        return math.inf
    if "const" in schema:
        return len(json.dumps(schema["const"]))
    if "enum" in schema:
        return max((len(json.dumps(value)) for value in schema["enum"]), default=0)
    if "anyOf" in schema:
        return max((worst_case_chars(branch) for branch in schema["anyOf"]), default=0)
    kind = schema.get("type")
    if kind == "string":
        if "maxLength" in schema:
            return float(schema["maxLength"]) + 2
        pattern = schema.get("pattern")
        return ID_CHARS + 2 if pattern and not UNBOUNDED.search(pattern) else math.inf
    if kind == "array" and "prefixItems" in schema:
        return 2 + sum(worst_case_chars(item) + 2 for item in schema["prefixItems"])
    if kind == "array":
        count = schema.get("maxItems", math.inf)
        return 2 + count * (worst_case_chars(schema.get("items", {})) + 2) if count else 2
    if kind == "object":
        properties = schema.get("properties", {})
        return 2 + sum(len(json.dumps(name)) + 4 + worst_case_chars(value) for name, value in properties.items())
    if kind in ("integer", "number"):
        return 24
    return math.inf


def narrow(tool: Tool, *, known: KnownValues) -> Tool | None:
    """`tool` with each id argument limited to known values; None when one has no candidate."""
    if known.spent(tool.name):
        return None
    parameters = copy.deepcopy(tool.parameters)
    for argument, schema in parameters.get("properties", {}).items():
        choices = known.choices(tool.name, argument)
        if choices is None:
            continue
        if not choices:
            return None
        if schema.get("type") == "array":
            # a copy of its own: arguments may share one schema object (item_ids and new_item_ids do)
            schema = parameters["properties"][argument] = copy.deepcopy(schema)
            schema["items"] = {"enum": choices}
            schema["maxItems"] = min(schema.get("maxItems", len(choices)), known.item_limit(tool.name))
        else:
            parameters["properties"][argument] = {"enum": choices}
    branches = known.branches(tool.name, parameters.get("properties", {}))
    if branches == []:
        return None
    if branches is not None:
        parameters = {"anyOf": branches}
    return dataclasses.replace(tool, parameters=parameters)


def narrowed_tools(
    tools: Sequence[Tool], *, allowed: Sequence[str], known: KnownValues
) -> tuple[list[Tool], list[str]]:
    """The tools with narrowed schemas, and which of `allowed` can be called with known values."""
    narrowed = {tool.name: narrow(tool, known=known) for tool in tools if tool.name in allowed}
    usable = [name for name in allowed if narrowed.get(name) is not None]
    return [narrowed.get(tool.name) or tool for tool in tools], usable
