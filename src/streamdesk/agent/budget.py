"""Per-answer budgets: the ticket cut to the tokens the model may read, and a wall-clock deadline.

The cut is measured with the backend's own tokenizer (`LLMBackend.text_tokens`, `cut_text`), so it holds
for whatever model serves; the loop records every cut in the answer's trace and the audit trail.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from streamdesk.agent.answers import Ticket
from streamdesk.agent.exceptions import AnswerTimeoutError


class Tokenizing(Protocol):
    """What a cut needs of a backend: token counts and token-bounded prefixes of text."""

    def text_tokens(self, text: str) -> int:
        """Tokens of `text` alone."""

    def cut_text(self, text: str, *, tokens: int) -> str:
        """The longest prefix of `text` within `tokens` tokens."""


@dataclass(frozen=True)
class InputCut:
    """How much of a ticket the model reads: lengths before and after, and why it was cut."""

    original_chars: int
    kept_chars: int
    original_tokens: int
    kept_tokens: int
    limit_tokens: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The cut as audit details and trace arguments."""
        return asdict(self)

    def describe(self) -> str:
        """One line for the trace and the audit record."""
        return (
            f"ticket cut from {self.original_chars} to {self.kept_chars} characters "
            f"({self.original_tokens} -> {self.kept_tokens} tokens, limit {self.limit_tokens}): {self.reason}"
        )


def cut_ticket(
    ticket: Ticket, *, backend: Tokenizing, tokens: int, reason: str, original: Ticket | None = None
) -> tuple[Ticket, InputCut | None]:
    """`ticket` with subject and body within `tokens` tokens (subject first), and the cut (None: it fits).

    `original` is the ticket as it arrived, when `ticket` was cut before: the record counts from it.
    """
    original = original or ticket
    held = backend.text_tokens(ticket.subject) + backend.text_tokens(ticket.body)
    if held <= tokens:
        return ticket, None
    subject = backend.cut_text(ticket.subject, tokens=tokens)
    room = tokens - backend.text_tokens(subject)
    body = backend.cut_text(ticket.body, tokens=room) if room > 0 else ""
    kept = ticket.model_copy(update={"subject": subject, "body": body})
    cut = InputCut(
        original_chars=len(original.subject) + len(original.body),
        kept_chars=len(subject) + len(body),
        original_tokens=backend.text_tokens(original.subject) + backend.text_tokens(original.body),
        kept_tokens=backend.text_tokens(subject) + backend.text_tokens(body),
        limit_tokens=tokens,
        reason=reason,
    )
    return kept, cut


class Deadline:
    """The wall-clock budget of one answer, started now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.at = self.started + seconds

    @property
    def elapsed(self) -> float:
        """Seconds since the answer started."""
        return time.monotonic() - self.started

    def check(self, *, before: str) -> None:
        """Raise `AnswerTimeoutError` if the budget is spent (`before` says what would have run next)."""
        expire(self.at, before=before)


def expire(deadline: float | None, *, before: str) -> None:
    """Raise `AnswerTimeoutError` once `time.monotonic()` passes `deadline` (None: no deadline)."""
    if deadline is not None and time.monotonic() >= deadline:
        raise AnswerTimeoutError(
            f"the answer's wall-clock budget ran out before {before}; raise STREAMDESK_ANSWER__ANSWER_TIMEOUT_S "
            "if answers this slow are expected"
        )
