"""Errors of the delivery package."""

from streamdesk.exceptions import StreamdeskError


class DeliveryError(StreamdeskError):
    """Base of the delivery package's errors."""


class DeliveryRefusedError(DeliveryError):
    """The helpdesk refused the reply (a 4xx other than 429): it is dead-lettered with this reason, never retried."""


class DeliveryUnavailableError(DeliveryError):
    """The helpdesk could not take the reply now (unreachable, 429, 5xx): it is retried with backoff."""

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class NoDestinationError(DeliveryError):
    """No helpdesk is configured for the reply's source: set STREAMDESK_DELIVERY__ZENDESK_URL or __WEBHOOK_URL."""
