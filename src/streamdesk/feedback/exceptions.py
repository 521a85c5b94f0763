"""Errors of the feedback package."""

from streamdesk.exceptions import StreamdeskError


class FeedbackError(StreamdeskError):
    """Base of the feedback package's errors."""


class InvalidFeedbackError(FeedbackError, ValueError):
    """A feedback signal's fields contradict its kind (a CSAT without a rating, an edit without text)."""


class AnswersUnavailableError(FeedbackError):
    """The answers table the label policy reads prompts and drafts from does not exist yet."""


class VerdictConflictError(FeedbackError):
    """The answer already has a verdict (accepted, edited or rejected); a verdict is final."""


class InvalidVerdictError(FeedbackError, ValueError):
    """A verdict the rules refuse: an edit that does not change the draft."""
