"""The label policy: the signals on one answer become KTO examples (prompt, completion, label) with lineage.

Policy `labels-v1`:
- accepted: the draft is desirable; edited: the draft is undesirable and the edit desirable; rejected: the draft
  is undesirable; reopened within `reopen_window_days` of the answer: what the customer got is undesirable;
  CSAT <= `csat_undesirable_max` undesirable, >= `csat_desirable_min` desirable, in between no vote; thumbs up or
  down: the draft is desirable or undesirable.
- Conflicts: signals sit in tiers, and the highest tier that voted decides; within a tier the latest signal
  wins (ties broken by event id). Tiers, strongest first: outcome (reopened, CSAT: what happened to the
  customer) > verdict (accepted, edited, rejected: a reviewer's judgement of the draft) > reaction (thumbs).
- Outcomes label the text the customer received: the draft when it was accepted or never reviewed, the edit
  when it was edited, nothing when it was rejected (the reply sent instead is not ours to learn). So an
  edited draft stays undesirable whatever the CSAT, and the CSAT decides the edit's label instead.
- An edit identical to the draft (whitespace and case aside) counts as an acceptance.
- Late signals: the policy is a pure function of all signals so far, so re-running it when a signal arrives
  updates earlier labels; the store then rewrites the example and queues it for training again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from streamdesk.feedback.config import FeedbackSettings
from streamdesk.feedback.models import AnswerContext, ExampleSource, FeedbackEvent, KtoExample

POLICY_VERSION = "labels-v1"
OUTCOME, VERDICT, REACTION = 3, 2, 1
"""Tiers of signals; the highest tier that voted decides a label."""


@dataclass(frozen=True)
class Vote:
    """One signal's say on one example: desirable or not, in which tier."""

    label: bool
    tier: int
    signal: FeedbackEvent

    @property
    def order(self) -> tuple[int, object, str]:
        """Sort key: tier first, then time, then event id; the largest vote decides."""
        return self.tier, self.signal.occurred_at, self.signal.event_id


def same_text(a: str, b: str) -> bool:
    """True when two texts differ only in whitespace and case."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def outcome_vote(signal: FeedbackEvent, *, answer: AnswerContext, settings: FeedbackSettings) -> Vote | None:
    """The vote of a reopen or CSAT signal on what the customer received; None when it says nothing."""
    if signal.kind == "reopened":
        elapsed = signal.occurred_at - answer.answered_at
        if timedelta(0) <= elapsed <= timedelta(days=settings.reopen_window_days):
            return Vote(False, OUTCOME, signal)
        return None
    if signal.kind == "csat" and signal.rating is not None:
        if signal.rating <= settings.csat_undesirable_max:
            return Vote(False, OUTCOME, signal)
        if signal.rating >= settings.csat_desirable_min:
            return Vote(True, OUTCOME, signal)
    return None


def _latest(votes: Iterable[Vote]) -> Vote | None:
    return max(votes, key=lambda vote: vote.order, default=None)


def _example(
    answer: AnswerContext, *, source: ExampleSource, completion: str, decided: Vote, votes: list[Vote]
) -> KtoExample:
    return KtoExample(
        answer_id=answer.answer_id,
        source=source,
        ticket_id=answer.ticket_id,
        prompt=answer.prompt,
        completion=completion,
        label=decided.label,
        adapter_version=answer.adapter_version or decided.signal.adapter_version,
        policy_version=POLICY_VERSION,
        decided_by=f"{decided.signal.kind}:{decided.signal.event_id}",
        signal_ids=tuple(sorted({vote.signal.event_id for vote in votes})),
        customer_id=answer.customer_id or decided.signal.customer_id,
        annotator_id=decided.signal.annotator_id,
        tenant=answer.tenant,
    )


def label_answer(
    *, answer: AnswerContext, signals: Iterable[FeedbackEvent], settings: FeedbackSettings
) -> list[KtoExample]:
    """The examples the signals on `answer` yield under `labels-v1`: none, the draft, and/or the edit."""
    mine = {s.event_id: s for s in signals if s.answer_id == answer.answer_id}
    ordered = sorted(mine.values(), key=lambda s: (s.occurred_at, s.event_id))
    verdicts = [s for s in ordered if s.kind in ("accepted", "edited", "rejected")]
    verdict = verdicts[-1] if verdicts else None
    verdict_kind = verdict.kind if verdict is not None else None
    if verdict is not None and verdict_kind == "edited" and same_text(verdict.edited_text or "", answer.completion):
        verdict_kind = "accepted"
    outcomes = [v for s in ordered if (v := outcome_vote(s, answer=answer, settings=settings))]
    reactions = [Vote(s.kind == "thumbs_up", REACTION, s) for s in ordered if s.kind in ("thumbs_up", "thumbs_down")]
    examples: list[KtoExample] = []

    if verdict is not None and verdict_kind in ("edited", "rejected"):
        draft_votes = [Vote(False, VERDICT, verdict), *reactions]
    else:
        accepted = [Vote(True, VERDICT, verdict)] if verdict is not None else []
        draft_votes = [*outcomes, *accepted, *reactions]
    decided = _latest(draft_votes)
    if decided is not None:
        examples.append(
            _example(answer, source="draft", completion=answer.completion, decided=decided, votes=draft_votes)
        )

    if verdict is not None and verdict_kind == "edited" and verdict.edited_text:
        edit_votes = [*outcomes, Vote(True, VERDICT, verdict)]
        decided_edit = max(edit_votes, key=lambda vote: vote.order)
        examples.append(
            _example(answer, source="edit", completion=verdict.edited_text, decided=decided_edit, votes=edit_votes)
        )
    return examples
