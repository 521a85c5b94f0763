"""Webhook signature schemes, each exactly as its vendor documents it, plus our own for middleware.

Every `verify_*` returns the signature that matched (the delivery id of last resort) or raises a
SignatureError; every `sign_*` produces what the sender would, so tests and our middleware can sign.

- HubSpot v3: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(secret, method + uri + body + timestamp)),
  `X-HubSpot-Request-Timestamp` in epoch ms; the uri has HubSpot's listed %-escapes decoded.
- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + body)) with the
  ISO 8601 `X-Zendesk-Webhook-Signature-Timestamp`.
- Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, hex HMAC-SHA256 of "<t>.<body>".
- Contentful request verification: `x-contentful-signature` = hex HMAC-SHA256 of
  "METHOD\\nPATH\\nname:value;name:value\\nBODY" over the headers named in `x-contentful-signed-headers`
  (sorted, lower-cased, values trimmed), `x-contentful-timestamp` in epoch ms; canonicalised as
  @contentful/node-apps-toolkit does.
- streamdesk (Salesforce, WordPress, generic, all signing through middleware):
  `X-Streamdesk-Signature: t=<unix>,v1=<hex>`, hex HMAC-SHA256 of "<t>.<body>" (Stripe's layout);
  several v1 entries allow secret rotation. `X-Streamdesk-Delivery-Id` optionally names the delivery.

A timestamp further than the tolerance from now, in either direction, is stale.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote, urlsplit

from streamdesk.gateway.exceptions import (
    SignatureExpiredError,
    SignatureMismatchError,
    SignatureMissingError,
)

HUBSPOT_SIGNATURE = "x-hubspot-signature-v3"
HUBSPOT_TIMESTAMP = "x-hubspot-request-timestamp"
ZENDESK_SIGNATURE = "x-zendesk-webhook-signature"
ZENDESK_TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
STRIPE_SIGNATURE = "stripe-signature"
CONTENTFUL_SIGNATURE = "x-contentful-signature"
CONTENTFUL_SIGNED_HEADERS = "x-contentful-signed-headers"
CONTENTFUL_TIMESTAMP = "x-contentful-timestamp"
STREAMDESK_SIGNATURE = "x-streamdesk-signature"

HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_HUBSPOT_ESCAPE = re.compile("|".join(HUBSPOT_DECODED), re.IGNORECASE)
_URI_COMPONENT_SAFE = "!'()*"  # with quote()'s own "_.-~": what encodeURIComponent leaves alone
_URI_SAFE = ";,/?:@&=+$!*'()#"  # with quote()'s own "_.-~": what encodeURI leaves alone


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that vendors sign; header names are lower-cased."""

    method: str
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    @property
    def path(self) -> str:
        """Path and query string, as the sender addressed them."""
        parts = urlsplit(self.url)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    def header(self, name: str) -> str:
        """The value of a required header; SignatureMissingError names it when absent."""
        value = self.headers.get(name, "").strip()
        if not value:
            raise SignatureMissingError(f"header {name!r} is missing; the sender must sign every request")
        return value


class Verifier(Protocol):
    """Checks one scheme; returns the signature that matched."""

    def __call__(self, request: SignedRequest, *, secret: str, tolerance_s: float, now: float | None = None) -> str: ...


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def check_fresh(timestamp_s: float, *, tolerance_s: float, now: float | None, header: str) -> None:
    """Raise SignatureExpiredError when the signed time is more than `tolerance_s` from now."""
    skew = (time.time() if now is None else now) - timestamp_s
    if abs(skew) > tolerance_s:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureExpiredError(
            f"{header} is {abs(skew):.0f}s {direction}, beyond the {tolerance_s:.0f}s tolerance; "
            "resend the event or fix the sender's clock"
        )


def _epoch_ms(request: SignedRequest, header: str) -> int:
    value = request.header(header)
    if not value.isdigit():
        raise SignatureMissingError(f"{header} {value!r} is not epoch milliseconds")
    return int(value)


def hubspot_uri(url: str) -> str:
    """The request URI with the %-escapes HubSpot's v3 scheme lists decoded."""
    return _HUBSPOT_ESCAPE.sub(lambda m: HUBSPOT_DECODED[m.group(0).upper()], url)


def sign_hubspot(*, secret: str, method: str, url: str, body: bytes, timestamp_ms: int) -> str:
    """The X-HubSpot-Signature-v3 value for a request."""
    message = method.upper().encode() + hubspot_uri(url).encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(_hmac(secret, message)).decode()


def verify_hubspot(request: SignedRequest, *, secret: str, tolerance_s: float, now: float | None = None) -> str:
    """Check a HubSpot v3 signature."""
    signature = request.header(HUBSPOT_SIGNATURE)
    timestamp_ms = _epoch_ms(request, HUBSPOT_TIMESTAMP)
    check_fresh(timestamp_ms / 1000, tolerance_s=tolerance_s, now=now, header=HUBSPOT_TIMESTAMP)
    expected = sign_hubspot(
        secret=secret, method=request.method, url=request.url, body=request.body, timestamp_ms=timestamp_ms
    )
    if not hmac.compare_digest(expected, signature):
        raise SignatureMismatchError(f"{HUBSPOT_SIGNATURE} does not match; check the HubSpot app secret")
    return signature


def sign_zendesk(*, secret: str, timestamp: str, body: bytes) -> str:
    """The X-Zendesk-Webhook-Signature value for a body signed at `timestamp` (ISO 8601)."""
    return base64.b64encode(_hmac(secret, timestamp.encode() + body)).decode()


def verify_zendesk(request: SignedRequest, *, secret: str, tolerance_s: float, now: float | None = None) -> str:
    """Check a Zendesk webhook signature."""
    signature = request.header(ZENDESK_SIGNATURE)
    timestamp = request.header(ZENDESK_TIMESTAMP)
    try:
        signed_at = datetime.fromisoformat(timestamp)
    except ValueError:
        raise SignatureMissingError(f"{ZENDESK_TIMESTAMP} {timestamp!r} is not an ISO 8601 time") from None
    if signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=UTC)
    check_fresh(signed_at.timestamp(), tolerance_s=tolerance_s, now=now, header=ZENDESK_TIMESTAMP)
    expected = sign_zendesk(secret=secret, timestamp=timestamp, body=request.body)
    if not hmac.compare_digest(expected, signature):
        raise SignatureMismatchError(f"{ZENDESK_SIGNATURE} does not match; check the webhook's signing secret")
    return signature


def sign_timestamped(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of "<timestamp>.<body>" (Stripe's v1 and our own scheme)."""
    return _hmac(secret, f"{timestamp}.".encode() + body).hex()


def timestamped_header(*, secret: str, timestamp: int, body: bytes) -> str:
    """A `t=<unix>,v1=<hex>` header value (Stripe-Signature, X-Streamdesk-Signature)."""
    return f"t={timestamp},v1={sign_timestamped(secret=secret, timestamp=timestamp, body=body)}"


def parse_timestamped_header(value: str, *, header: str) -> tuple[int, list[str]]:
    """The timestamp and every v1 signature of a `t=...,v1=...` header."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        name, _, part = item.strip().partition("=")
        if name == "t" and part.isdigit():
            timestamp = int(part)
        elif name == "v1" and part:
            signatures.append(part)
    if timestamp is None or not signatures:
        raise SignatureMissingError(f"{header} {value[:80]!r} lacks t=<unix> or v1=<hex>")
    return timestamp, signatures


def _verify_timestamped(
    request: SignedRequest, *, header: str, secret: str, tolerance_s: float, now: float | None
) -> str:
    timestamp, signatures = parse_timestamped_header(request.header(header), header=header)
    expected = sign_timestamped(secret=secret, timestamp=timestamp, body=request.body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureMismatchError(f"{header} does not match: no v1 signature fits; check the signing secret")
    check_fresh(timestamp, tolerance_s=tolerance_s, now=now, header=header)
    return expected


def verify_stripe(request: SignedRequest, *, secret: str, tolerance_s: float, now: float | None = None) -> str:
    """Check a Stripe-Signature header (any one v1 may match)."""
    return _verify_timestamped(request, header=STRIPE_SIGNATURE, secret=secret, tolerance_s=tolerance_s, now=now)


def verify_streamdesk(request: SignedRequest, *, secret: str, tolerance_s: float, now: float | None = None) -> str:
    """Check our X-Streamdesk-Signature header (any one v1 may match)."""
    return _verify_timestamped(request, header=STREAMDESK_SIGNATURE, secret=secret, tolerance_s=tolerance_s, now=now)


def contentful_path(path: str) -> str:
    """The path as Contentful canonicalises it: query component-escaped, then the whole URI-escaped."""
    pathname, _, rest = path.partition("?")
    search = quote(rest.split("?")[0], safe=_URI_COMPONENT_SAFE)
    return quote(f"{pathname}?{search}" if search else pathname, safe=_URI_SAFE)


def sign_contentful(
    *, secret: str, method: str, path: str, body: bytes, timestamp_ms: int, headers: Mapping[str, str]
) -> dict[str, str]:
    """The three x-contentful-* signing headers for a request signing `headers` plus the two it adds."""
    signed = {k.lower().strip(): v.strip() for k, v in headers.items()}
    signed[CONTENTFUL_TIMESTAMP] = str(timestamp_ms)
    names = ",".join(sorted(signed.keys() | {CONTENTFUL_SIGNED_HEADERS}))
    signed[CONTENTFUL_SIGNED_HEADERS] = names
    canonical_headers = ";".join(f"{name}:{signed[name]}" for name in sorted(signed))
    canonical = f"{method.upper()}\n{contentful_path(path)}\n{canonical_headers}\n".encode() + body
    return {
        CONTENTFUL_SIGNATURE: _hmac(secret, canonical).hex(),
        CONTENTFUL_SIGNED_HEADERS: names,
        CONTENTFUL_TIMESTAMP: str(timestamp_ms),
    }


def verify_contentful(request: SignedRequest, *, secret: str, tolerance_s: float, now: float | None = None) -> str:
    """Check a Contentful request-verification signature."""
    signature = request.header(CONTENTFUL_SIGNATURE)
    names = request.header(CONTENTFUL_SIGNED_HEADERS).split(",")
    timestamp_ms = _epoch_ms(request, CONTENTFUL_TIMESTAMP)
    check_fresh(timestamp_ms / 1000, tolerance_s=tolerance_s, now=now, header=CONTENTFUL_TIMESTAMP)
    picked = {name: value for name, value in request.headers.items() if name in names}
    expected = sign_contentful(
        secret=secret,
        method=request.method,
        path=request.path,
        body=request.body,
        timestamp_ms=timestamp_ms,
        headers=picked,
    )[CONTENTFUL_SIGNATURE]
    if not hmac.compare_digest(expected, signature):
        raise SignatureMismatchError(f"{CONTENTFUL_SIGNATURE} does not match; check the signing secret")
    return signature
