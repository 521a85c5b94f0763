"""Errors of the console package."""

from streamdesk.exceptions import StreamdeskError


class ConsoleError(StreamdeskError):
    """Base of the console package's errors."""


class InsecureConsoleKeyError(ConsoleError):
    """The session signing key is the development default (or too short) in production."""


class DraftNotFoundError(ConsoleError):
    """No draft answer with that id in the operator's tenant."""


class InvalidReviewError(ConsoleError):
    """A review the console cannot record (unknown verdict, empty edit)."""


class SignInRequiredError(ConsoleError):
    """The request carries no valid sign-in; the console sends the browser to the sign-in page."""


class PageForbiddenError(ConsoleError):
    """The signed-in operator's roles may not open the page or press the button."""


class CsrfRejectedError(ConsoleError):
    """A form came back without the session's CSRF token."""
