"""Errors raised by connectors; every one is a ConnectorError, so the worker dead-letters the message."""

from connectors.base import ConnectorError, MalformedJson

__all__ = ["ConnectorError", "MalformedJson", "MappingError", "UnknownFamily"]


class MappingError(ConnectorError):
    """A declarative mapping file is missing or malformed; the message names the file and the fix."""


class UnknownFamily(ConnectorError):
    """No connector is registered for a raw-topic family."""
