"""Errors of the training package."""

from streamdesk.exceptions import StreamdeskError


class TrainingError(StreamdeskError):
    """Base of the training package's errors."""


class TrainingConfigError(TrainingError, ValueError):
    """A trainer setting is out of range or contradicts another."""


class NotEnoughDataError(TrainingError):
    """Too few labelled examples to train or evaluate."""


class AdapterVersionNotFoundError(TrainingError):
    """No adapter version of that name is registered."""


class PromotionError(TrainingError):
    """An adapter cannot be promoted or rolled back in its current state."""


class NotPromotedError(TrainingError):
    """The eval gate refused an adapter that had to pass it (the shipped default bootstrap)."""
