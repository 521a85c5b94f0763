"""The flywheel turns in `streamdesk up`: reviews -> retrain -> gate -> promotion -> the running agent swaps; rollback.

Reviews are posted through the API on the agent's drafts (each edited into the reply the customer should
have had); the learn worker's trigger starts a tiny retrain, the gate promotes the candidate over the base
model, and the next ticket's answer records the new adapter, with no worker restarted. A rollback through
the API takes effect the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.test_durability import Up

pytestmark = [pytest.mark.slow, pytest.mark.stack]
KEY = "flywheel-supervisor-key-0123456789"
OPERATORS = json.dumps({"flywheel-supervisor": {"roles": ["agent", "supervisor"], "token": KEY}})
AUTH = {"X-API-Key": KEY}
TOPICS = [
    ("my parcel never arrived", "the parcel that has not arrived"),
    ("the jacket I got is the wrong size", "exchanging the jacket for another size"),
    ("I was charged twice this month", "the double charge on your card"),
    ("the blender stopped working after a week", "the blender that stopped working"),
    ("can I change my delivery address", "changing the delivery address"),
    ("the box came damaged", "the damaged box"),
    ("I want to return the shoes", "returning the shoes"),
    ("my discount code did not apply", "the discount code that did not apply"),
    ("the order shows delivered but it is not here", "the order marked delivered that is not here"),
    ("how long does a refund take", "how long a refund takes"),
    ("the lamp is missing a part", "the part missing from the lamp"),
    ("I ordered the wrong colour", "swapping the colour you ordered"),
    ("the tracking link does not work", "the tracking link"),
    ("my gift card balance is wrong", "the gift card balance"),
]
TRAINING = {
    "STREAMDESK_RUNTIME__BOOTSTRAP_ADAPTER": "false",  # the base model serves first; the gate compares with it
    "STREAMDESK_TRAINING__CHECK_INTERVAL_S": "2",
    "STREAMDESK_TRAINING__MIN_NEW_EXAMPLES": "12",
    "STREAMDESK_TRAINING__SCHEDULE_HOURS": "0",  # only the count of new reviews starts a retrain
    "STREAMDESK_TRAINING__MIN_HELDOUT_PER_CLASS": "1",
    "STREAMDESK_TRAINING__GENERAL_TEXTS": "1",
    "STREAMDESK_FEEDBACK__HELDOUT_PERCENT": "34",
    "STREAMDESK_KTO__MAX_STEPS": "4",
    "STREAMDESK_KTO__MAX_LENGTH": "64",
    "STREAMDESK_KTO__THREADS": "1",
    "STREAMDESK_ANSWER__MAX_STEPS": "2",
    "STREAMDESK_IDENTITY__OPERATORS": OPERATORS,
}


def post_ticket(up: Up, ticket_id: str, *, subject: str, body: str, **fields: str) -> None:
    ticket = {"subject": subject, "body": body, "ticket_id": ticket_id, **fields}
    response = httpx.post(up.url("/tickets"), json=ticket, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text


def answer_of(up: Up, ticket_id: str) -> dict[str, Any]:
    """The answer to ticket `ticket_id`, as `GET /answers/{id}` shows it (waiting for it)."""
    [(answer_id,)] = up.wait_for(
        lambda: up.query("SELECT answer_id::text FROM answers WHERE ticket_id = %s", ticket_id),
        what=f"the answer to {ticket_id}",
        timeout_s=600,
    )
    shown = httpx.get(up.url(f"/answers/{answer_id}"), headers=AUTH, timeout=30)
    assert shown.status_code == 200, shown.text
    return dict(shown.json())


def model_calls(up: Up, answer: dict[str, Any]) -> set[str | None]:
    """The adapters the answer's model calls ran under, from the audit trail."""
    rows = up.query(
        "SELECT DISTINCT content::jsonb ->> 'adapter_version' FROM audit_records "
        "WHERE action = 'model_call' AND trace_id = %s",
        answer["trace_id"],
    )
    return {row[0] for row in rows}


@pytest.mark.timeout(3000)
def test_reviews_retrain_promote_and_the_running_agent_swaps_then_rolls_back(tmp_path: Path, model_dir: Path) -> None:
    up = Up(tmp_path / "state")
    up.start(agent=True, STREAMDESK_AGENT__MODEL_DIR=str(model_dir), **TRAINING)
    try:
        up.wait_for(api_ready(up), what="the API", timeout_s=900)  # a loaded host: up's default 240 s is short
        for n, (asked, _) in enumerate(TOPICS):  # nobody identifiable: each draft asks who the customer is
            post_ticket(up, f"FLY-{n}", subject=asked.capitalize(), body=f"Hello, {asked}. What can you do?")
        for n, (_, about) in enumerate(TOPICS):
            draft = answer_of(up, f"FLY-{n}")
            assert draft["status"] == "draft" and draft["adapter"] is None
            edit = {"text": f"Thank you for writing to us about {about}. I have sorted it out for you today."}
            response = httpx.post(up.url(f"/answers/{draft['answer_id']}/edit"), json=edit, headers=AUTH, timeout=30)
            assert response.status_code == 202, response.text

        def promoted() -> str | None:
            listed = httpx.get(up.url("/models"), headers=AUTH, timeout=30).json()
            refused = [v for v in listed if v["status"] == "candidate" and v["gate"] and not v["gate"]["passed"]]
            assert not refused, f"the gate refused: {refused}"
            return next((v["version"] for v in listed if v["status"] == "promoted"), None)

        version = up.wait_for(promoted, what="a retrain promoted by the gate", timeout_s=1800)
        [(reason,)] = up.query("SELECT reason FROM retrain_runs WHERE version = %s", version)
        assert reason == "count"
        up.wait_for(lambda: f'"adapter": "{version}"' in agent_log(up), what="the agent's swap", timeout_s=300)

        post_ticket(up, "FLY-AFTER-PROMOTE", subject="Where is my order?", body="Its status?", customer_id="c1")
        answer = answer_of(up, "FLY-AFTER-PROMOTE")
        assert answer["adapter"] == version and model_calls(up, answer) == {version}

        response = httpx.post(up.url("/models/rollback"), json={"reason": "e2e"}, headers=AUTH, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["action"] == "rolled_back" and response.json()["version"] is None
        up.wait_for(lambda: '"adapter": null' in agent_log(up), what="the agent's swap back", timeout_s=300)

        post_ticket(up, "FLY-AFTER-ROLLBACK", subject="Where is my order?", body="Any news?", customer_id="c1")
        answer = answer_of(up, "FLY-AFTER-ROLLBACK")
        assert answer["adapter"] is None and model_calls(up, answer) == {None}
        assert "agent exited" not in up.output.read_text(errors="replace")
    finally:
        up.interrupt()


def api_ready(up: Up) -> Callable[[], bool]:
    return lambda: httpx.get(up.url("/readyz"), timeout=2).status_code == 200


def agent_log(up: Up) -> str:
    path = up.state_dir / "logs" / "agent.log"
    return path.read_text(errors="replace") if path.exists() else ""
