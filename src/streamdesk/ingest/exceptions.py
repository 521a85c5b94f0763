"""Errors of the ingest path."""

from streamdesk.exceptions import StreamdeskError


class PayloadTooLarge(StreamdeskError):
    """A raw payload is bigger than `ingest.max_body_bytes`."""


class UnknownTopic(StreamdeskError):
    """A message arrived on a topic the registry does not route."""
