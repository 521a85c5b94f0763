"""Evaluation cases from τ²-bench, Bitext and hand-written attacks: what the converters produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from evals import datasets
from evals.datasets import DatasetError, EvalCase, ExpectedAction
from streamdesk.guardrails import service as guardrails

TAU = Path("taubench")


def tau_files(shared_data: Path) -> dict[str, Path]:
    return {
        "tasks_path": shared_data / TAU / "tau2_retail_tasks.json",
        "split_path": shared_data / TAU / "tau2_retail_split_tasks.json",
        "db_path": shared_data / TAU / "tau2_retail_db.json",
    }


def tau_cases(shared_data: Path, split: str) -> list[EvalCase]:
    return datasets.taubench_cases(**tau_files(shared_data), split=split)


def test_the_taubench_test_split_becomes_40_cases(shared_data: Path, test_split: list[str]) -> None:
    cases = tau_cases(shared_data, "test")
    assert [case.id for case in cases] == [f"tau2-retail-{task_id}" for task_id in test_split] and len(cases) == 40
    first = cases[0]
    assert (
        first.ticket.body.startswith("You want to exchange the water bottle") and "zipcode 28236" in first.ticket.body
    )
    assert first.ticket.customer == {
        "user_id": "mei_kovacs_8020",
        "email": "mei.kovacs8232@example.com",
        "name": "Mei Kovacs",
        "zip": "28236",
    }
    assert first.expected_actions[0].name == "find_user_id_by_name_zip" and len(first.ticket.subject) <= 80
    assert all(case.ticket.customer.get("user_id") for case in cases)
    for case in cases:
        names = {action.name for action in case.expected_actions}
        assert not names & set(case.forbidden_actions) and "escalate" not in case.forbidden_actions
        assert case.must_escalate == ("transfer_to_human_agents" in names)
    assert sum(case.must_escalate for case in cases) == 2


def test_train_and_test_splits_do_not_overlap(shared_data: Path) -> None:
    train = {case.id for case in tau_cases(shared_data, "train")}
    test = {case.id for case in tau_cases(shared_data, "test")}
    assert len(train) == 74 and not train & test
    with pytest.raises(DatasetError, match="split 'dev' is not in"):
        tau_cases(shared_data, "dev")


def test_cases_round_trip_through_jsonl(shared_data: Path, tmp_path: Path) -> None:
    cases = tau_cases(shared_data, "test")[:3] + datasets.injection_cases(
        db_path=shared_data / TAU / "tau2_retail_db.json"
    )
    path = tmp_path / "cases.jsonl"
    assert datasets.write_cases(path, cases) == len(cases)
    assert datasets.read_cases(path) == cases
    path.write_text('{"id": "x"}\n')
    with pytest.raises(DatasetError, match=r"cases.jsonl:1 is not a case"):
        datasets.read_cases(path)


def test_bitext_intents_become_name_only_cases(shared_data: Path) -> None:
    cases = datasets.bitext_cases(
        csv_path=shared_data / "support" / "bitext_customer_support_training_4514.csv", per_intent=10
    )
    assert len(cases) == 40 and len({case.id for case in cases}) == 40
    tools = {case.id.rsplit("-", 1)[0]: case.expected_actions[0] for case in cases}
    assert (
        tools["bitext-cancel_order"].name == "cancel_pending_order" and tools["bitext-cancel_order"].arguments is None
    )
    assert tools["bitext-contact_human_agent"].name == "transfer_to_human_agents"
    assert all(case.must_escalate == case.id.startswith("bitext-contact_human_agent") for case in cases)
    assert all(not case.ticket.customer for case in cases)
    with pytest.raises(DatasetError, match="have no tool"):
        datasets.bitext_cases(csv_path=Path("unused.csv"), intents=["review"])


def test_injection_cases_attack_real_pending_orders(shared_data: Path) -> None:
    db_path = shared_data / TAU / "tau2_retail_db.json"
    world = json.loads(db_path.read_text())
    cases = {case.id: case for case in datasets.injection_cases(db_path=db_path)}
    assert len(cases) == 7 and all(case.injection for case in cases.values())
    for case in cases.values():
        assert case.ticket.customer["user_id"] in world["users"]
        assert "cancel_pending_order" in case.forbidden_actions and "escalate" not in case.forbidden_actions
        in_ticket = guardrails.detect_injection(case.ticket.body) is not None
        in_documents = any(guardrails.detect_injection(f"{d.title}\n{d.body}") for d in case.documents)
        assert case.must_escalate == (in_ticket or in_documents), case.id
    assert cases["injection-poisoned-article"].documents[0].access == "public"
    order_id = cases["injection-other-customers-order"].ticket.body.split()[3]
    assert world["orders"][order_id]["user_id"] != cases["injection-other-customers-order"].ticket.customer["user_id"]


def test_a_hand_off_whose_summary_tau2_does_not_compare_matches_by_name() -> None:
    from evals.datasets import compared_arguments

    transfer = {"name": "transfer_to_human_agents", "arguments": {"summary": "free text"}, "compare_args": []}
    cancel = {"name": "cancel_pending_order", "arguments": {"order_id": "#W1", "reason": "no longer needed"}}
    assert compared_arguments(transfer) is None
    assert compared_arguments(cancel) == cancel["arguments"]


class ConversationShape(BaseModel):
    """The JSONL shape of a conversation case (issue 15), checked here without the reader of `eval conversations`."""

    model_config = ConfigDict(extra="forbid")

    id: str
    ticket: dict[str, Any]
    turns: list[dict[str, str]] = Field(min_length=1)
    expected_actions: list[ExpectedAction]
    forbidden_actions: list[str]
    writes_after_turn: int = Field(ge=1)


def test_the_taubench_test_split_becomes_40_conversations(shared_data: Path, tmp_path: Path) -> None:
    conversations = datasets.taubench_conversations(**tau_files(shared_data), split="test")
    single = {case.id: case for case in tau_cases(shared_data, "test")}
    path = tmp_path / "conversations.jsonl"
    assert datasets.write_jsonl(path, conversations) == 40
    cases = [ConversationShape.model_validate_json(line) for line in path.read_text().splitlines()]
    assert [case.id for case in cases] == list(single)
    for case in cases:
        same = single[case.id]
        assert case.ticket == {"subject": case.ticket["subject"], "customer": same.ticket.customer}
        assert case.expected_actions == same.expected_actions and case.forbidden_actions == same.forbidden_actions
        assert set(case.turns[0]) == {"body"} and "the agent" not in case.turns[0]["body"].lower()
        assert 1 <= case.writes_after_turn <= len(case.turns) and len(case.ticket["subject"]) <= 80
    confirming = [case for case in cases if {"body": "Yes, I confirm."} in case.turns]
    assert len(confirming) >= 35 and all(case.writes_after_turn >= 2 for case in confirming)
    assert any(len(case.turns) > 2 for case in cases)
