"""Errors of the guardrails package."""

from streamdesk.exceptions import StreamdeskError


class GuardrailError(StreamdeskError):
    """Base of the guardrails package's errors."""


class InvalidPatternError(GuardrailError):
    """A configured extra injection pattern is not a valid regular expression."""
