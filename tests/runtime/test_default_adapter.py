"""`streamdesk up` serves the adapter the gate prefers: the SFT bootstrap shipped in the package, named on answers.

On a machine whose cache lacks it (`training/default_adapter.py`), the first run copies the shipped adapter and
its gate verdict into the machine cache; every later `up`, with a fresh state dir too, copies it from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.test_durability import API_KEY, Up

pytestmark = [pytest.mark.slow, pytest.mark.stack]
FIRST_SERVE_S = 600.0
"""How long the first run on an empty machine cache may take to serve the shipped bootstrap (no training)."""


def answer_to_a_ticket(up: Up) -> dict[str, Any]:
    """POST a ticket from a named customer and return its answer, as `GET /answers/{id}` shows it."""
    headers = {"X-API-Key": API_KEY}
    ticket = {"subject": "Where is my order?", "body": "Please tell me its status.", "ticket_id": "ADAPTER-1"}
    response = httpx.post(up.url("/tickets"), json=ticket | {"customer_id": "c1"}, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    [(answer_id,)] = up.wait_for(
        lambda: up.query("SELECT answer_id::text FROM answers WHERE ticket_id = 'ADAPTER-1'"),
        what="the answer",
        timeout_s=600,
    )
    shown = httpx.get(up.url(f"/answers/{answer_id}"), headers=headers, timeout=30)
    assert shown.status_code == 200, shown.text
    return dict(shown.json())


def test_up_promotes_the_shipped_bootstrap_and_the_next_answer_records_it(tmp_path: Path, model_dir: Path) -> None:
    machine = {
        "STREAMDESK_AGENT__MODEL_DIR": str(model_dir),
        "STREAMDESK_TRAINING__BOOTSTRAP_CACHE_DIR": str(tmp_path / "cache"),  # an empty machine cache
    }
    up = Up(tmp_path / "first")
    up.start(agent=True, **machine)
    try:
        up.wait_for(lambda: " serves (" in up.log(), what="the default adapter", timeout_s=FIRST_SERVE_S)
        up.ready()
        [(version, gate)] = up.query("SELECT version, gate FROM adapter_versions WHERE status = 'promoted'")
        assert gate["passed"] and f"adapter  {version} serves (SFT bootstrap, shipped with the package" in up.log()
        answer = answer_to_a_ticket(up)
        assert answer["adapter"] == version
        assert up.count("SELECT count(*) FROM audit_records WHERE action = 'model_promoted'") == 1
    finally:
        up.interrupt()

    again = Up(tmp_path / "second")  # a fresh state dir: the machine cache still has the adapter
    again.start(agent=True, **machine)
    try:
        again.ready()
        assert "serves (SFT bootstrap, from the machine cache" in again.log()
        assert again.count("SELECT count(*) FROM adapter_versions WHERE status = 'promoted'") == 1
    finally:
        again.interrupt()


def test_with_the_switch_off_the_base_model_answers(tmp_path: Path, model_dir: Path) -> None:
    up = Up(tmp_path / "state")
    up.start(agent=True, STREAMDESK_AGENT__MODEL_DIR=str(model_dir), STREAMDESK_RUNTIME__BOOTSTRAP_ADAPTER="false")
    try:
        up.ready()
        answer = answer_to_a_ticket(up)
        assert answer["adapter"] is None
        assert up.count("SELECT count(*) FROM adapter_versions") == 0
        assert "preparing the SFT bootstrap" not in up.log()
    finally:
        up.interrupt()
