"""The eval gate's decision and the live-rollback rule, case by case (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streamdesk.training import gate
from streamdesk.training.models import LiveScore


def score(margin: float, gap: float, ppl: float, adapter: str | None = "kto-2") -> gate.AdapterScore:
    return gate.AdapterScore(
        adapter=adapter,
        reward_margin=margin,
        desirable_logp=-1.0 + gap,
        undesirable_logp=-1.0,
        perplexity=ppl,
        examples=8,
    )


SERVING = score(0.10, 0.20, 10.0, adapter="kto-1")


@dataclass(frozen=True)
class Case:
    name: str
    candidate: gate.AdapterScore
    passed: bool
    reason: str = ""
    checks: tuple[gate.CheckOutcome, ...] = ()
    heldout_problem: str | None = None


CASES = [
    Case("better on both, same perplexity", score(0.30, 0.40, 10.0), True),
    Case("perplexity 4% worse is tolerated", score(0.30, 0.40, 10.4), True),
    Case("perplexity 6% worse is refused", score(0.30, 0.40, 10.6), False, "perplexity"),
    Case("margin not better", score(0.10, 0.40, 10.0), False, "reward margin"),
    Case("likelihood gap worse", score(0.30, 0.10, 10.0), False, "likelihood gap"),
    Case(
        "a failed regression check blocks",
        score(0.3, 0.4, 10.0),
        False,
        "eval_agent",
        (gate.CheckOutcome("eval_agent", False, {"pass_rate": 0.4}),),
    ),
    Case(
        "a passed regression check does not", score(0.3, 0.4, 10.0), True, "", (gate.CheckOutcome("eval_agent", True),)
    ),
    Case("too little held-out data", score(0.3, 0.4, 10.0), False, "held-out", (), "held-out set has 1 desirable"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gate_decision(case: Case) -> None:
    report = gate.decide(
        candidate=case.candidate,
        serving=SERVING,
        perplexity_tolerance=0.05,
        checks=case.checks,
        heldout_problem=case.heldout_problem,
    )
    assert report.passed is case.passed
    if case.reason:
        assert any(case.reason in reason for reason in report.reasons), report.reasons
    assert report.to_json()["candidate"]["likelihood_gap"] == pytest.approx(case.candidate.likelihood_gap)


def test_non_finite_perplexity_is_stored_as_null() -> None:
    assert score(0.3, 0.4, float("inf")).to_json()["perplexity"] is None


@pytest.mark.parametrize(
    ("current", "previous", "roll_back"),
    [
        ((10, 20), (25, 5), True),
        ((20, 10), (22, 8), False),
        ((5, 10), (25, 5), False),
        ((70, 30), (80, 20), False),
        ((69, 31), (80, 20), True),
    ],
    ids=["trails by far", "within margin", "too little feedback", "exactly at margin", "just past margin"],
)
def test_rollback_decision(current: tuple[int, int], previous: tuple[int, int], roll_back: bool) -> None:
    decision = gate.rollback_decision(
        current=LiveScore("kto-2", *current), previous=LiveScore("kto-1", *previous), margin=0.10, min_feedback=20
    )
    assert decision.roll_back is roll_back, decision.reason


def test_heldout_needs_both_classes_and_general_text_exists() -> None:
    from tests.feedback.test_hygiene import example

    assert gate.heldout_problem([example(1), example(2), example(3, label=False)], min_per_class=2) is not None
    assert gate.heldout_problem([example(n, label=n % 2 == 0) for n in range(4)], min_per_class=2) is None
    texts = gate.general_texts(limit=4)
    assert len(texts) == 4 and all(len(text) > 200 for text in texts)
