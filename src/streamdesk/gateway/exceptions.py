"""Why the webhook gateway turned a request away; views map each class to an HTTP status."""

from streamdesk.exceptions import StreamdeskError


class GatewayError(StreamdeskError):
    """Base class of every webhook the gateway refuses."""


class UnknownSourceError(GatewayError):
    """The path names a source the gateway does not serve (404)."""


class SignatureError(GatewayError):
    """The request is not authentic: unsigned, forged or stale (401)."""


class SignatureMissingError(SignatureError):
    """A required signature or timestamp header is absent or malformed (401)."""


class SignatureMismatchError(SignatureError):
    """No signature in the request matches the one computed with our secret (401)."""


class SignatureExpiredError(SignatureError):
    """The signed timestamp lies outside the tolerance window (401)."""


class ReplayedDeliveryError(GatewayError):
    """This signed request (same signature, so same body and timestamp) was accepted before (409)."""


class PayloadTooLargeError(GatewayError):
    """The body exceeds `ingest.max_body_bytes` (413)."""


class InvalidPayloadError(GatewayError):
    """The body is not JSON, or a required query parameter is missing or malformed (400)."""


class GatewayUnavailableError(GatewayError):
    """The database did not store the delivery, so nothing was accepted (503)."""


class UnprocessedDeliveryError(GatewayError):
    """The relay published a delivery `gateway.relay_max_attempts` times and ingest never processed it."""
