"""Every route x every role: allowed (not 401/403, no 5xx) or 403, against the real database and broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streamdesk import db
from streamdesk.api.app import create_app
from streamdesk.policy.rules import load_rules
from tests.api.conftest import ROLES, Stack, auth

PEOPLE = frozenset(ROLES)
STAFF = frozenset({"agent", "supervisor", "admin"})
REVIEWERS = frozenset({"supervisor", "admin", "auditor"})
APPROVERS = frozenset({"supervisor", "admin"})
PUBLIC = ("GET /healthz", "GET /readyz", "GET /metrics", "POST /webhooks/{source}")
CONSOLE_PREFIX = "/console"
"""The web console's pages are tested in tests/console (browser tests), not in this matrix."""


@dataclass(frozen=True)
class Route:
    """One route: its rule name, a concrete request (ids filled in from the seeded rows), who may call it."""

    method: str
    template: str
    allowed: frozenset[str]
    path: str = ""
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


MATRIX = [
    Route("POST", "/tickets", STAFF, json={"subject": "Broken zipper", "body": "It broke."}),
    Route("GET", "/tickets", PEOPLE),
    Route("GET", "/tickets/{source}/{ticket_id}", PEOPLE, path="/tickets/zendesk/T-1"),
    Route("GET", "/answers/{answer_id}", PEOPLE, path="/answers/{answer_id}"),
    Route("POST", "/answers/{answer_id}/accept", STAFF, path="/answers/{answer_id}/accept"),
    Route("POST", "/answers/{answer_id}/edit", STAFF, path="/answers/{answer_id}/edit", json={"text": "Ships today."}),
    Route("POST", "/answers/{answer_id}/reject", STAFF, path="/answers/{answer_id}/reject"),
    Route("GET", "/approvals", REVIEWERS),
    Route("POST", "/approvals/{action_id}/approve", APPROVERS, path="/approvals/{action_id}/approve"),
    Route("POST", "/approvals/{action_id}/reject", APPROVERS, path="/approvals/{action_id}/reject"),
    Route("GET", "/feedback", STAFF | {"auditor"}, params={"answer_id": "{answer_id}"}),
    Route(
        "POST",
        "/feedback",
        STAFF,
        json={"answer_id": "{answer_id}", "ticket_id": "T-1", "kind": "csat", "rating": 5},
    ),
    Route("GET", "/search", PEOPLE, params={"q": "order", "mode": "lexical"}),
    Route("POST", "/search", PEOPLE, json={"query": "order", "mode": "lexical"}),
    Route("GET", "/audit", REVIEWERS, params={"ticket": "zendesk:T-1"}),
    Route("GET", "/audit/verify", frozenset({"admin", "auditor"})),
    Route("GET", "/audit/export", frozenset({"admin", "auditor"})),
    Route("GET", "/models", REVIEWERS),
    Route("GET", "/models/retrains", REVIEWERS),
    Route("POST", "/models/promote/{version}", frozenset({"admin"}), path="/models/promote/{version}"),
    Route("POST", "/models/rollback", APPROVERS),
    Route("POST", "/models/retrain", APPROVERS),
    Route("GET", "/ingest/lag", PEOPLE),
    Route("GET", "/ingest/dead-letters", REVIEWERS),
    Route("GET", "/deliveries", PEOPLE, params={"answer_id": "{answer_id}"}),
    Route("GET", "/deliveries/{reply_id}", PEOPLE, path="/deliveries/{answer_id}"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def call(stack: Stack, route: Route, headers: dict[str, str]) -> Any:
    path = _fill(route.path or route.template, stack.ids)
    return stack.client.request(
        route.method, path, headers=headers, json=_fill(route.json, stack.ids), params=_fill(route.params, stack.ids)
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", MATRIX, ids=lambda r: r.name)
def test_route_by_role(stack: Stack, route: Route, role: str) -> None:
    response = call(stack, route, auth(role))
    if role in route.allowed:
        assert response.status_code not in (401, 403), f"{role} refused on {route.name}: {response.text}"
        assert response.status_code < 500, f"{route.name} as {role}: {response.status_code} {response.text}"
    else:
        assert response.status_code == 403, f"{role} on {route.name}: {response.status_code} {response.text}"
        assert "may not call" in response.json()["detail"]
        with db.connect(stack.database_url) as conn:
            denial = conn.execute(
                "SELECT content::jsonb ->> 'decision', content::jsonb ->> 'actor_id' FROM audit_records "
                "WHERE action = 'rbac_decision' AND tool_name = %s ORDER BY seq DESC LIMIT 1",
                (route.name,),
            ).fetchone()
        assert denial is not None and denial[0] == "denied", f"no audited denial of {route.name} for {role}"
        assert denial[1] == f"{role}-op", denial


@pytest.mark.parametrize("route", MATRIX, ids=lambda r: r.name)
def test_every_route_needs_credentials(stack: Stack, route: Route) -> None:
    response = call(stack, route, {})
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="streamdesk"')


@pytest.mark.parametrize("name", PUBLIC[:3])
def test_public_routes_need_no_credentials(stack: Stack, name: str) -> None:
    response = stack.client.get(name.split(" ")[1])
    assert response.status_code == 200, response.text


def test_the_matrix_covers_every_route_and_every_rule() -> None:
    spec = create_app().openapi()
    served = {
        f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method in ops
        if not path.startswith(CONSOLE_PREFIX)
    }
    tested = {route.name for route in MATRIX} | set(PUBLIC)
    assert served == tested
    ruled = {name for name in load_rules().routes if not name.split(" ")[1].startswith(CONSOLE_PREFIX)}
    assert ruled == served, "rules.yaml names routes the app does not serve, or misses some"
