"""Each vendor's signature scheme: expected values computed from the vendor's documented formula."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from streamdesk.gateway import signatures
from streamdesk.gateway.exceptions import (
    SignatureExpiredError,
    SignatureMismatchError,
    SignatureMissingError,
)
from streamdesk.gateway.signatures import SignedRequest

SECRET = "shhh-its-a-secret"
BODY = b'[{"eventId":1,"objectId":123,"subscriptionType":"contact.creation"}]'
NOW = 1_790_000_000.0
TOLERANCE = 300


def hmac_sha256(message: bytes, secret: str = SECRET) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def request(headers: dict[str, str], *, url: str = "https://hooks.example.com/webhooks/x", body: bytes = BODY):
    return SignedRequest(method="POST", url=url, body=body, headers=headers)


# HubSpot v3 ---------------------------------------------------------------------------------------


def hubspot_headers(*, at: float = NOW, url: str, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    ms = str(int(at * 1000))
    message = b"POST" + url.encode() + body + ms.encode()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(hmac_sha256(message, secret)).decode(),
        "X-HubSpot-Request-Timestamp": ms,
    }


def test_hubspot_accepts_the_documented_signature() -> None:
    url = "https://hooks.example.com/webhooks/hubspot"
    signed = request(hubspot_headers(url=url), url=url)
    expected = signed.headers["x-hubspot-signature-v3"]
    assert signatures.verify_hubspot(signed, secret=SECRET, tolerance_s=TOLERANCE, now=NOW) == expected


def test_hubspot_decodes_the_listed_escapes_of_the_uri_before_signing() -> None:
    sent = "https://hooks.example.com/webhooks/hubspot?portal=a%3Ab%2Fc%40d%2a&q=%20"
    decoded = "https://hooks.example.com/webhooks/hubspot?portal=a:b/c@d*&q=%20"
    assert signatures.hubspot_uri(sent) == decoded
    signed = request(hubspot_headers(url=decoded), url=sent)
    assert signatures.verify_hubspot(signed, secret=SECRET, tolerance_s=TOLERANCE, now=NOW)


def test_hubspot_refuses_forged_missing_and_stale() -> None:
    url = "https://hooks.example.com/webhooks/hubspot"
    with pytest.raises(SignatureMismatchError, match="x-hubspot-signature-v3"):
        signatures.verify_hubspot(
            request(hubspot_headers(url=url, secret="other"), url=url), secret=SECRET, tolerance_s=300, now=NOW
        )
    with pytest.raises(SignatureMismatchError):
        signatures.verify_hubspot(
            request(hubspot_headers(url=url), url=url, body=BODY + b" "), secret=SECRET, tolerance_s=300, now=NOW
        )
    with pytest.raises(SignatureMissingError, match="x-hubspot-signature-v3"):
        signatures.verify_hubspot(request({}, url=url), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureExpiredError, match="old"):
        signatures.verify_hubspot(
            request(hubspot_headers(url=url, at=NOW - 301), url=url), secret=SECRET, tolerance_s=300, now=NOW
        )
    with pytest.raises(SignatureMissingError, match="epoch milliseconds"):
        headers = hubspot_headers(url=url) | {"X-HubSpot-Request-Timestamp": "yesterday"}
        signatures.verify_hubspot(request(headers, url=url), secret=SECRET, tolerance_s=300, now=NOW)


# Zendesk --------------------------------------------------------------------------------------------


def zendesk_headers(*, stamp: str = "2026-09-21T14:13:20Z", secret: str = SECRET) -> dict[str, str]:
    signature = base64.b64encode(hmac_sha256(stamp.encode() + BODY, secret)).decode()
    return {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def test_zendesk_accepts_the_documented_signature() -> None:
    signed = request(zendesk_headers())
    assert (
        signatures.sign_zendesk(secret=SECRET, timestamp="2026-09-21T14:13:20Z", body=BODY)
        == (signed.headers["x-zendesk-webhook-signature"])
    )
    assert signatures.verify_zendesk(signed, secret=SECRET, tolerance_s=TOLERANCE, now=NOW)


def test_zendesk_refuses_forged_missing_and_stale() -> None:
    with pytest.raises(SignatureMismatchError):
        signatures.verify_zendesk(request(zendesk_headers(secret="other")), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureMissingError, match="x-zendesk-webhook-signature-timestamp"):
        headers = zendesk_headers()
        del headers["X-Zendesk-Webhook-Signature-Timestamp"]
        signatures.verify_zendesk(request(headers), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureExpiredError):
        signatures.verify_zendesk(
            request(zendesk_headers(stamp="2026-09-21T14:00:00Z")), secret=SECRET, tolerance_s=300, now=NOW
        )
    with pytest.raises(SignatureMissingError, match="ISO 8601"):
        signatures.verify_zendesk(request(zendesk_headers(stamp="soon")), secret=SECRET, tolerance_s=300, now=NOW)


# Stripe and our own t=,v1= scheme -----------------------------------------------------------------


def v1(timestamp: int, secret: str = SECRET) -> str:
    return hmac_sha256(f"{timestamp}.".encode() + BODY, secret).hex()


@pytest.mark.parametrize(
    ("header", "verify"),
    [("Stripe-Signature", signatures.verify_stripe), ("X-Streamdesk-Signature", signatures.verify_streamdesk)],
)
def test_timestamped_schemes_accept_any_matching_v1(header: str, verify: signatures.Verifier) -> None:
    t = int(NOW)
    value = f"t={t},v1={v1(t, 'old-secret')},v1={v1(t)},v0=ignored"
    assert verify(request({header: value}), secret=SECRET, tolerance_s=TOLERANCE, now=NOW) == v1(t)
    assert signatures.timestamped_header(secret=SECRET, timestamp=t, body=BODY) == f"t={t},v1={v1(t)}"


@pytest.mark.parametrize(
    ("header", "verify"),
    [("Stripe-Signature", signatures.verify_stripe), ("X-Streamdesk-Signature", signatures.verify_streamdesk)],
)
def test_timestamped_schemes_refuse_forged_missing_and_stale(header: str, verify: signatures.Verifier) -> None:
    t = int(NOW)
    with pytest.raises(SignatureMismatchError):
        verify(request({header: f"t={t},v1={v1(t, 'other')}"}), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureMismatchError):
        verify(request({header: f"t={t + 1},v1={v1(t)}"}), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureMissingError):
        verify(request({}), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureMissingError, match="lacks"):
        verify(request({header: f"v1={v1(t)}"}), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureExpiredError):
        verify(request({header: f"t={t - 400},v1={v1(t - 400)}"}), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureExpiredError, match="future"):
        verify(request({header: f"t={t + 400},v1={v1(t + 400)}"}), secret=SECRET, tolerance_s=300, now=NOW)


# Contentful -----------------------------------------------------------------------------------------


def contentful_headers(*, at: float = NOW, secret: str = SECRET, topic: str = "ContentManagement.Entry.publish"):
    ms = str(int(at * 1000))
    names = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
    canonical = (
        "POST\n/webhooks/contentful\n"
        f"x-contentful-signed-headers:{names};x-contentful-timestamp:{ms};x-contentful-topic:{topic}\n"
    ).encode() + BODY
    return {
        "X-Contentful-Topic": topic,
        "X-Contentful-Signed-Headers": names,
        "X-Contentful-Timestamp": ms,
        "X-Contentful-Signature": hmac_sha256(canonical, secret).hex(),
    }


def contentful_request(headers: dict[str, str]) -> SignedRequest:
    return request(headers | {"Content-Type": "application/json"}, url="https://h.example.com/webhooks/contentful")


def test_contentful_accepts_the_canonical_request_signature() -> None:
    headers = contentful_headers()
    assert signatures.verify_contentful(contentful_request(headers), secret=SECRET, tolerance_s=300, now=NOW)
    ours = signatures.sign_contentful(
        secret=SECRET,
        method="POST",
        path="/webhooks/contentful",
        body=BODY,
        timestamp_ms=int(NOW * 1000),
        headers={"X-Contentful-Topic": " ContentManagement.Entry.publish "},
    )
    assert ours["x-contentful-signature"] == headers["X-Contentful-Signature"]
    assert ours["x-contentful-signed-headers"] == headers["X-Contentful-Signed-Headers"]


def test_contentful_canonical_path_escapes_like_the_node_toolkit() -> None:
    assert signatures.contentful_path("/webhooks/contentful") == "/webhooks/contentful"
    assert signatures.contentful_path("/a b?x=1&y=\u00e4") == "/a%20b?x%253D1%2526y%253D%25C3%25A4"


def test_contentful_refuses_forged_missing_and_stale() -> None:
    tampered = contentful_headers() | {"X-Contentful-Topic": "ContentManagement.Entry.delete"}
    with pytest.raises(SignatureMismatchError):
        signatures.verify_contentful(contentful_request(tampered), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureMismatchError):
        signatures.verify_contentful(
            contentful_request(contentful_headers(secret="other")), secret=SECRET, tolerance_s=300, now=NOW
        )
    for name in ("X-Contentful-Signature", "X-Contentful-Signed-Headers", "X-Contentful-Timestamp"):
        headers = contentful_headers()
        del headers[name]
        with pytest.raises(SignatureMissingError, match=name.lower()):
            signatures.verify_contentful(contentful_request(headers), secret=SECRET, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureExpiredError):
        signatures.verify_contentful(
            contentful_request(contentful_headers(at=NOW - 600)), secret=SECRET, tolerance_s=300, now=NOW
        )


def test_check_fresh_uses_the_clock_when_now_is_not_given() -> None:
    signatures.check_fresh(time.time() - 10, tolerance_s=300, now=None, header="h")
    with pytest.raises(SignatureExpiredError, match="300s tolerance"):
        signatures.check_fresh(time.time() - 1000, tolerance_s=300, now=None, header="h")
