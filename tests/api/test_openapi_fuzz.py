"""Property-based run over the OpenAPI spec (schemathesis) with admin credentials: no request gets a 5xx."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_asgi

from tests.api.conftest import Stack, auth

MAX_EXAMPLES = 12
"""Per operation; the spec has 28, so a run makes a few hundred requests against the real stack."""


@pytest.mark.slow
def test_no_operation_answers_with_a_server_error(stack: Stack) -> None:
    warm = stack.client.get("/search", params={"q": "warm up", "mode": "vector"}, headers=auth("admin"))
    assert warm.status_code == 200, "the embedder loads on the first vector search; load it before timing requests"
    schema = from_asgi("/openapi.json", stack.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 28
    only = os.environ.get("API_FUZZ_ONLY")
    operations = [op for op in operations if not only or only in op.label]
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=auth("admin"), checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not just the first
            causes = getattr(exc, "exceptions", None) or [exc]
            failures.append(f"{operation.label}: " + "\n".join(f"{type(c).__name__}: {c}" for c in causes))
    assert not failures, "\n\n".join(failures)
