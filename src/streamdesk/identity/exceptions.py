"""Errors of the identity package."""

from streamdesk.exceptions import StreamdeskError


class IdentityError(StreamdeskError):
    """Base of the identity package's errors."""


class InvalidPrincipalError(IdentityError):
    """A principal's fields contradict each other (e.g. an agent identity without a verified customer)."""


class UnknownOperatorError(IdentityError):
    """An operator id or API token is not configured in `identity.operators`."""


class OperatorExistsError(IdentityError):
    """An operator id is already in use (a live database operator or an environment-configured one)."""
