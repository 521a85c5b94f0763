"""Errors of the seed package."""

from streamdesk.exceptions import StreamdeskError


class SeedError(StreamdeskError):
    """Seed data cannot be found, read or generated as asked."""
