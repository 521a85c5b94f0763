"""`streamdesk up` delivers replies: with no helpdesk configured it starts the Zendesk stand-in and the delivery
worker, and a ticket's reply, once accepted through the API, is posted there as one comment."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from streamdesk.delivery.sinks import stamp
from tests.runtime.test_durability import API_KEY, Up, post_ticket, up  # noqa: F401 - `up` is a fixture

pytestmark = [pytest.mark.slow, pytest.mark.stack]
AUTH = {"X-API-Key": API_KEY}


def test_up_delivers_an_accepted_reply_to_the_zendesk_standin(up: Up, model_dir: Path) -> None:  # noqa: F811
    up.start(agent=True, STREAMDESK_AGENT__MODEL_DIR=str(model_dir), STREAMDESK_RUNTIME__BOOTSTRAP_ADAPTER="false")
    up.ready()
    line = up.wait_for(
        lambda: re.search(r"helpdesk (http://127\.0\.0\.1:\d+)\s+local Zendesk stand-in", up.log()), what="the line"
    )
    assert line is not None
    standin = line.group(1)
    assert post_ticket(up, 1).status_code == 202
    rows = up.wait_for(
        lambda: up.query("SELECT answer_id::text, status FROM answers WHERE ticket_id = '7001'"),
        what="the ticket's answer",
        timeout_s=600,
    )
    answer_id, status = rows[0]
    if status != "auto_reply":
        accepted = httpx.post(up.url(f"/answers/{answer_id}/accept"), headers=AUTH, timeout=30)
        assert accepted.status_code == 202, accepted.text

    def comments() -> list[dict[str, object]]:
        got = httpx.get(f"{standin}/_standin/requests", timeout=5).json()["comments"]
        return [c for c in got if c["ticket_id"] == 7001]

    (comment,) = up.wait_for(comments, what="the reply posted on the stand-in", timeout_s=120)
    assert stamp(answer_id) in str(comment["body"]) and comment["public"] is True
    delivery = httpx.get(up.url(f"/deliveries/{answer_id}"), headers=AUTH, timeout=10).json()
    assert delivery["status"] == "delivered" and delivery["destination"] == "zendesk"
    time.sleep(3)
    assert len(comments()) == 1
    up.interrupt()
