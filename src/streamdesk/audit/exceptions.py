"""Errors of the audit package."""

from streamdesk.exceptions import StreamdeskError


class AuditError(StreamdeskError):
    """Base of the audit package's errors."""


class InsecureAuditKeyError(AuditError):
    """The audit signing key is the development default outside development, or too short."""


class CorruptAuditRecordError(AuditError):
    """A stored record's content is not the JSON the audit trail wrote; run `streamdesk audit verify`."""


class AuditTamperedError(AuditError):
    """The audit trail's signed head is missing, forged or behind its records; run `streamdesk audit verify`."""
