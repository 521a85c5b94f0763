"""Errors of the knowledge package."""

from streamdesk.exceptions import StreamdeskError


class KnowledgeError(StreamdeskError):
    """Base of the knowledge package's errors."""


class ChunkingError(KnowledgeError):
    """Chunking parameters are inconsistent."""


class EmbedderLoadError(KnowledgeError):
    """The embedding model could not be loaded."""


class InvalidDocumentEventError(KnowledgeError):
    """A document event cannot be applied (e.g. an upsert without a version)."""
