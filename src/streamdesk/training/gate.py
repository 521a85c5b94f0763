"""The eval gate: a candidate adapter against the serving one on held-out data, and the live-rollback rule.

Scores per adapter, on held-out labelled examples the candidate never trained on:
- reward margin: KTO's implicit reward, beta * (log p_adapter - log p_base) summed over the completion,
  averaged over desirable minus undesirable examples (the base model scores 0);
- likelihood gap: mean per-token log-likelihood of desirable minus undesirable completions;
- perplexity on held-out general text (the bundled policy and knowledge documents), against forgetting.
A candidate passes when its margin and likelihood gap beat the serving adapter's, its perplexity is at most
`perplexity_tolerance` worse, and every extra check passes — the hook where `eval agent` regression-set
metrics plug in (`GateCheck`). A candidate that fails stays registered for inspection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streamdesk.feedback.models import KtoExample
from streamdesk.training.models import LiveScore

SEED_DATA = Path(__file__).resolve().parents[1] / "seed" / "data"


@dataclass(frozen=True)
class AdapterScore:
    """How one adapter (None: the base model) does on the held-out data."""

    adapter: str | None
    reward_margin: float
    desirable_logp: float
    undesirable_logp: float
    perplexity: float
    examples: int

    @property
    def likelihood_gap(self) -> float:
        """Mean per-token log-likelihood of desirable minus undesirable completions."""
        return self.desirable_logp - self.undesirable_logp

    def to_json(self) -> dict[str, Any]:
        """The score as a JSON object (non-finite numbers as null)."""
        data = asdict(self) | {"likelihood_gap": self.likelihood_gap}
        return {key: _finite(value) for key, value in data.items()}


@dataclass(frozen=True)
class GateContext:
    """What an extra check gets: the candidate and serving adapter names and folders."""

    candidate: str
    candidate_dir: Path
    serving: str | None
    serving_dir: Path | None


@dataclass(frozen=True)
class CheckOutcome:
    """The verdict of one extra check, with the numbers behind it."""

    name: str
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)


GateCheck = Callable[[GateContext], CheckOutcome]
"""An extra promotion check, e.g. the `eval agent` regression set: it must pass for a promotion."""


@dataclass(frozen=True)
class GateReport:
    """The gate's decision, the two scores and every reason against promotion."""

    passed: bool
    candidate: AdapterScore
    serving: AdapterScore
    reasons: list[str]
    checks: list[CheckOutcome] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (stored with the candidate)."""
        return {
            "passed": self.passed,
            "candidate": self.candidate.to_json(),
            "serving": self.serving.to_json(),
            "reasons": self.reasons,
            "checks": [json.loads(json.dumps(asdict(check), default=str)) for check in self.checks],
        }


@dataclass(frozen=True)
class RollbackDecision:
    """Whether live feedback says to roll back, and why."""

    roll_back: bool
    reason: str


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def decide(
    *,
    candidate: AdapterScore,
    serving: AdapterScore,
    perplexity_tolerance: float,
    min_margin_gain: float = 0.0,
    checks: Sequence[CheckOutcome] = (),
    heldout_problem: str | None = None,
) -> GateReport:
    """Promote only when the candidate is better on the held-out labels and not worse on general text."""
    reasons = [heldout_problem] if heldout_problem else []
    if not candidate.reward_margin > serving.reward_margin + min_margin_gain:
        reasons.append(
            f"reward margin {candidate.reward_margin:.4f} does not beat the serving {serving.reward_margin:.4f}"
            + (f" by {min_margin_gain}" if min_margin_gain else "")
        )
    if not candidate.likelihood_gap > serving.likelihood_gap:
        reasons.append(
            f"likelihood gap {candidate.likelihood_gap:.4f} does not beat the serving {serving.likelihood_gap:.4f}"
        )
    limit = serving.perplexity * (1 + perplexity_tolerance)
    if not candidate.perplexity <= limit:
        reasons.append(
            f"perplexity {candidate.perplexity:.3f} is more than {perplexity_tolerance:.0%} above the serving "
            f"{serving.perplexity:.3f}"
        )
    reasons += [f"check {check.name} failed: {check.details}" for check in checks if not check.passed]
    return GateReport(passed=not reasons, candidate=candidate, serving=serving, reasons=reasons, checks=list(checks))


def heldout_problem(examples: Sequence[KtoExample], *, min_per_class: int) -> str | None:
    """Why the held-out set cannot judge a candidate (too few of a class), or None."""
    desirable = sum(e.label for e in examples)
    undesirable = len(examples) - desirable
    if desirable < min_per_class or undesirable < min_per_class:
        return (
            f"held-out set has {desirable} desirable and {undesirable} undesirable examples; the gate needs "
            f"{min_per_class} of each (collect more feedback or lower STREAMDESK_TRAINING__MIN_HELDOUT_PER_CLASS)"
        )
    return None


def rollback_decision(*, current: LiveScore, previous: LiveScore, margin: float, min_feedback: int) -> RollbackDecision:
    """Roll back when the serving adapter's positive rate trails the previous one's by more than `margin`.

    Both need `min_feedback` signals first, so a handful of early thumbs cannot flip the model.
    """
    if current.total < min_feedback or previous.total < min_feedback:
        return RollbackDecision(
            False,
            f"not enough live feedback yet ({current.total} on {current.version}, {previous.total} on "
            f"{previous.version}; need {min_feedback} each)",
        )
    gap = round(previous.rate - current.rate, 9)
    if gap > margin:
        return RollbackDecision(
            True,
            f"{current.version} positive rate {current.rate:.3f} trails {previous.version} {previous.rate:.3f} "
            f"by {gap:.3f} > {margin}",
        )
    return RollbackDecision(False, f"{current.version} trails {previous.version} by {gap:.3f} <= {margin}")


def general_texts(*, limit: int) -> list[str]:
    """Held-out general passages: paragraphs of the bundled retail policy and banking knowledge documents."""
    texts = [
        part.strip()
        for part in (SEED_DATA / "tau2_retail_policy.md").read_text().split("\n\n")
        if len(part.strip()) > 200
    ]
    for line in (SEED_DATA / "tau2_banking_knowledge_sample.jsonl").read_text().splitlines():
        text = json.loads(line).get("text", "")
        if len(text) > 200:
            texts.append(text)
    return texts[:limit]
