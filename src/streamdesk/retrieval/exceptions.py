"""Errors of the retrieval package."""

from streamdesk.exceptions import StreamdeskError


class RetrievalError(StreamdeskError):
    """Base of the retrieval package's errors."""


class InvalidFiltersError(RetrievalError):
    """Search filters are inconsistent (e.g. a time range that ends before it starts)."""


class VectorIndexMissingError(RetrievalError):
    """The vector mode in force has no index on the active embedding column."""


class EmbeddingSpaceError(RetrievalError):
    """The embedding-space registry refuses a step (no active space, a cut-over already running, ...)."""
