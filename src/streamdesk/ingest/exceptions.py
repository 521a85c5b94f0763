"""Errors of the ingest path."""

from streamdesk.exceptions import StreamdeskError


class PayloadTooLarge(StreamdeskError):
    """A raw payload is over `ingest.max_body_bytes`, or a canonical event over its topic's `max_message_bytes`."""


class UnknownTopic(StreamdeskError):
    """A message arrived on a topic the registry does not route."""
