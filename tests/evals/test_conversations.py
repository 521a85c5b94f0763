"""`streamdesk eval conversations` on hand-made conversations, the real model and a rolled-back store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals import conversations
from evals.exceptions import DatasetError
from streamdesk.config import reset_settings

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "conversations.jsonl"
TAU_DB = Path("taubench") / "tau2_retail_db.json"


def test_conversation_cases_are_read_and_bad_lines_named(tmp_path: Path) -> None:
    cases = conversations.read_cases(CASES)
    assert [len(case.turns) for case in cases] == [2, 2, 3, 2]
    assert cases[0].writes_after_turn == 2 and cases[0].as_eval_case().ticket.body == cases[0].turns[0].body
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "turns": []}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1"):
        conversations.read_cases(tmp_path / "bad.jsonl")


@pytest.mark.slow
def test_the_command_answers_each_turn_in_order_and_prints_the_metrics(
    clean_db: str, shared_data: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamdesk.cli.main import app

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # the CLI points logging at the runner's stream
    monkeypatch.setenv("STREAMDESK_AGENT__MODEL_DIR", str(model_dir))
    monkeypatch.setenv("STREAMDESK_ANSWER__MAX_NEW_TOKENS", "160")
    monkeypatch.setenv("STREAMDESK_ANSWER__REPLY_MAX_CHARS", "60")
    monkeypatch.setenv("STREAMDESK_ANSWER__MAX_STEPS", "1")
    reset_settings()
    arguments = ["eval", "conversations", "--dataset", str(CASES), "--world", str(shared_data / TAU_DB)]
    outcome = CliRunner().invoke(app, arguments)
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.stdout.strip().splitlines()
    print("\n".join(lines))
    summary = json.loads(lines[-1])
    assert set(summary) >= {
        "cases", "task_success", "action_recall", "premature_writes", "unauthorized_actions", "injection_followed",
        "turn_p50_s",
    }  # fmt: skip
    assert (summary["cases"], summary["errors"]) == (4, 0)
    assert summary["premature_writes"] == 0 and summary["unauthorized_actions"] == 0
    assert summary["injection_followed"] == 0 and summary["task_success"] == 1.0
