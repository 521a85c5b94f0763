"""Errors of the commands package."""

from streamdesk.exceptions import StreamdeskError


class CommandError(StreamdeskError):
    """Base of the commands package's errors."""


class UnknownSystemError(CommandError):
    """A tool names a system of record that has no `command.<system>` topic registered."""
