"""The API's error policy on the real stack: a 422 names what failed without echoing a large input, bodies over
the limit are 413, and JSON no parser should take (huge integers, absurd nesting) is a 400, never a 500."""

from __future__ import annotations

import json

from streamdesk.config import get_settings
from tests.api.conftest import Stack, auth

BIG = 1_500_000


def test_a_422_names_the_problem_but_does_not_echo_a_large_input(stack: Stack) -> None:
    body = {"subject": "Refund?", "body": "x" * BIG, "tags": ["ok"] * 10}
    response = stack.client.post("/tickets", json=body, headers=auth("agent"))
    assert response.status_code == 422, response.text[:300]
    assert len(response.content) < 2_000, f"a {len(response.content)}-byte 422 for a {BIG}-character field"
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "body"] and "20000" in error["msg"]
    assert "not echoed" in error["input"] and "x" * 300 not in response.text
    short = stack.client.post("/tickets", json={"subject": ""}, headers=auth("agent"))
    assert short.status_code == 422 and short.json()["detail"][0]["input"] == ""


def test_a_422_lists_at_most_twenty_errors(stack: Stack) -> None:
    body = {"query": "refund", "filters": {"sources": [[i] for i in range(40)], "doc_types": [[i] for i in range(40)]}}
    response = stack.client.post("/search", json=body, headers=auth("agent"))
    assert response.status_code == 422, response.text[:300]
    detail = response.json()["detail"]
    assert len(detail) <= 21 and len(response.content) < 20_000
    assert detail[-1]["type"] == "too_many_errors" and "more errors not listed" in detail[-1]["msg"]


def test_a_body_over_the_limit_is_413_before_it_is_parsed(stack: Stack) -> None:
    limit = get_settings().ingest.max_body_bytes
    body = json.dumps({"subject": "Refund?", "body": "x" * (limit + 1)})
    response = stack.client.post("/tickets", content=body, headers=auth("agent") | {"Content-Type": "application/json"})
    assert response.status_code == 413 and len(response.content) < 1_000


def test_json_no_parser_should_take_is_400_on_api_routes(stack: Stack) -> None:
    bodies = {
        "5,000-digit integer": b'{"query": "refund", "k": ' + b"9" * 5000 + b"}",
        "1,000-deep arrays": b'{"query": "refund", "filters": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    }
    for name, body in bodies.items():
        response = stack.client.post(
            "/search", content=body, headers=auth("agent") | {"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (name, response.status_code, response.text[:200])
