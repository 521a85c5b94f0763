"""Errors of the entities package."""

from streamdesk.exceptions import StreamdeskError


class EntityStoreError(StreamdeskError):
    """Base of the entities package's errors."""


class InvalidEntityEventError(EntityStoreError):
    """An entity event cannot be applied (e.g. an upsert without a version)."""
