"""Step schemas per principal: only permitted tools have a branch, and every τ²-bench action fits its branch."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from streamdesk.agent import backends, grammar, tools
from streamdesk.agent.exceptions import GrammarError

REGISTRY = tools.default_registry()
READS = [tool.name for tool in REGISTRY if tool.kind == "read"]


def test_only_allowed_tools_get_a_branch_in_registry_order_then_reply() -> None:
    schema = grammar.step_schema(tools=list(REGISTRY), allowed={"get_order_details", "find_user_id_by_email"})
    assert grammar.schema_tools(schema) == ["find_user_id_by_email", "get_order_details", "reply"]
    assert grammar.schema_tools(grammar.step_schema(tools=list(REGISTRY), allowed=[])) == ["reply"]


def test_unknown_or_reserved_names_are_refused() -> None:
    with pytest.raises(GrammarError, match=r"allowed tools \['drop_tables'\] are not registered"):
        grammar.step_schema(tools=list(REGISTRY), allowed={"drop_tables"})
    reply = tools.Tool(
        name="reply", description="d", parameters={"type": "object"}, kind="read", handler=tools.escalate
    )
    with pytest.raises(GrammarError, match="'reply', which is reserved"):
        grammar.step_schema(tools=[reply], allowed=[])


def test_replies_cite_only_the_given_chunks_and_lengths_are_left_to_validation() -> None:
    schema = grammar.step_schema(tools=list(REGISTRY), allowed=REGISTRY.names(), citation_ids=["kb:1:0", "kb:1:0"])
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"tool": "reply", "arguments": {"message": "Done.", "citations": ["kb:1:0"]}})
    assert not validator.is_valid({"tool": "reply", "arguments": {"message": "Done.", "citations": ["kb:9:9"]}})
    none = grammar.step_schema(tools=[], allowed=[], citation_ids=[])
    assert not jsonschema.Draft202012Validator(none).is_valid(
        {"tool": "reply", "arguments": {"message": "x", "citations": ["kb:1:0"]}}
    )
    assert "maxLength" not in json.dumps(schema)


def test_every_tau2_expected_action_is_an_instance_of_the_step_schema(retail_tasks: dict[str, dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(grammar.step_schema(tools=list(REGISTRY), allowed=REGISTRY.names()))
    actions = [a for t in retail_tasks.values() for a in (t.get("evaluation_criteria") or {}).get("actions") or []]
    misfits = [a for a in actions if not validator.is_valid({"tool": a["name"], "arguments": a["arguments"]})]
    assert len(actions) == 550
    assert [a["arguments"] for a in misfits] == [{"order_id": "#9502126"}, {"order_id": "#9502127"}] * 2


@pytest.mark.slow
def test_xgrammar_cannot_emit_a_tool_the_principal_may_not_use(backend: backends.TransformersBackend) -> None:
    import xgrammar as xgr

    compiled = backend.compiled_grammar(grammar.step_schema(tools=list(REGISTRY), allowed=READS))
    assert backend.compiled_grammar(grammar.step_schema(tools=list(REGISTRY), allowed=READS)) is compiled

    def accepts(text: str) -> bool:
        return bool(xgr.GrammarMatcher(compiled).accept_string(text))

    assert accepts('{"tool": "get_order_details", "arguments": {"order_id": "#W1234567"}}')
    assert accepts('{"tool": "reply", "arguments": {"message": "Hi", "citations": []}}')
    assert not accepts('{"tool": "cancel_')
    assert not accepts('{"tool": "get_order_details", "arguments": {"order_id": "W1"}}')
    assert not accepts('{"tool": "get_order_details", "arguments": {"order_id": "#W1234567", "x": 1}}')


@pytest.mark.parametrize(
    ("text", "remaining"),
    [
        ('{"tool": "reply", "arguments": {"message": "', 10),
        ('{"tool": "reply", "arguments": {"message": "Hi \\"you\\"', 2),
        ('{"tool": "reply", "arguments": {"message": "Hi", "citations": ["kb', None),
        ('{"tool": "transfer_to_human_agents", "arguments": {"summary": "abc', 2),
        ('{"tool": "rep', None),
        ('{"tool": "reply", "arguments": {"message', None),
    ],
)
def test_the_string_limiter_follows_json_keys_and_escapes(text: str, remaining: int | None) -> None:
    schema = {
        "anyOf": [
            {"properties": {"arguments": {"properties": {"message": {"type": "string", "maxLength": 10}}}}},
            {"properties": {"arguments": {"properties": {"summary": {"type": "string", "maxLength": 5}}}}},
            {"properties": {"arguments": {"properties": {"summary": {"type": "string", "maxLength": 9}}}}},
        ]
    }
    assert backends.string_limits(schema) == {"message": 10, "summary": 5}
    limiter = backends.StringLimiter(backends.string_limits(schema))
    for chunk in (text[i : i + 3] for i in range(0, len(text), 3)):
        limiter.feed(chunk)
    assert limiter.remaining() == remaining
