"""JSON a parser chokes on (an integer past Python's digit limit, absurd nesting, NaN) is a 400, never a 500."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.gateway.conftest import Signer, read_topic, relay_stored, remembered

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.stack

BAD_BODIES = {
    "5,000-digit integer": b'{"ID": 4, "post_title": "x", "total": ' + b"9" * 5000 + b"}",
    "1,000-deep arrays": b'{"ID": 4, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "150-deep objects": b'{"ID": 4, "x": ' + b'{"a": ' * 150 + b"1" + b"}" * 150 + b"}",
    "NaN": b'{"ID": 4, "total": NaN}',
    "-Infinity": b'{"ID": 4, "total": -Infinity}',
}
REASONS = {
    "5,000-digit integer": "send such numbers as strings",
    "1,000-deep arrays": "send at most 100",
    "150-deep objects": "send at most 100",
    "NaN": "NaN, which JSON does not allow",
    "-Infinity": "-Infinity, which JSON does not allow",
}


def test_unparseable_json_is_a_400_naming_the_problem_and_nothing_is_published(
    client: TestClient, topics_ready: str, gateway_db: str, signer: Signer
) -> None:
    for name, body in BAD_BODIES.items():
        headers = signer("wordpress", body) | {"Content-Type": "application/json"}
        response = client.post("/webhooks/wordpress", content=body, headers=headers)
        assert response.status_code == 400, (name, response.status_code, response.text[:200])
        assert REASONS[name] in response.json()["detail"], (name, response.json())
    assert remembered(gateway_db) == []
    assert read_topic(topics_ready, "raw.wordpress") == []
    nested = json.dumps({"ID": 4, "x": json.loads("[" * 99 + "]" * 99)}).encode()
    accepted = client.post("/webhooks/wordpress", content=nested, headers=signer("wordpress", nested))
    assert accepted.status_code == 202, accepted.text
    assert relay_stored() == 1
    assert len(read_topic(topics_ready, "raw.wordpress")) == 1
