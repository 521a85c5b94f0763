"""The console in the whole app: citation links are http(s) only, security headers and a CSP the pages honour,
and signing out ends the sign-in for every copy of the cookie."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import psycopg
import pytest

from streamdesk.api.app import create_app
from streamdesk.config import get_settings, reset_settings
from streamdesk.console.config import get_console_settings
from tests.console.conftest import OPERATORS, seed_dead_letter, seed_documents, seed_draft
from tests.console.test_views import sign_in

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SAFE_URL = "https://help.example.com/refund-timing"
"""The link `seed_documents` gives the other cited article."""
HOSTILE_URLS = ("javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,<b>x</b>")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


@pytest.fixture
def client(conn: psycopg.Connection, operators: dict[str, dict[str, object]]) -> Iterator[TestClient]:
    """The whole application (`create_app`) over the clean session database."""
    reset_settings()
    with TestClient(create_app(get_settings()), follow_redirects=False) as test_client:
        yield test_client


@pytest.mark.parametrize("hostile_url", HOSTILE_URLS)
def test_a_script_url_in_a_document_never_becomes_a_link(
    client: TestClient, conn: psycopg.Connection, hostile_url: str
) -> None:
    seed_documents(conn, urls={"returns-policy": hostile_url})
    seed_draft(conn)
    sign_in(client, "sam")
    page = client.get("/console/review")
    assert page.status_code == 200 and "Returns and refunds policy" in page.text
    assert f'href="{SAFE_URL}"' in page.text
    hrefs = re.findall(r'href="([^"]*)"', page.text)
    assert all(not href.strip().lower().startswith(("javascript:", "data:")) for href in hrefs), hrefs

    api_key = {"X-API-Key": str(OPERATORS["sam"]["token"])}
    found = client.get("/search", params={"q": "delivered items returned", "mode": "lexical"}, headers=api_key)
    assert found.status_code == 200, found.text
    urls = {hit["citation"]["external_id"]: hit["citation"]["url"] for hit in found.json()["hits"]}
    assert urls.get("returns-policy", "missing") is None, urls


def test_every_response_carries_security_headers_and_pages_need_no_inline_code(
    client: TestClient, conn: psycopg.Connection
) -> None:
    seed_draft(conn)
    seed_dead_letter(conn)
    login = client.get("/console/login")
    csp = login.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for response in (login, client.get("/healthz"), client.get("/tickets")):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["content-security-policy"] == csp
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["x-frame-options"] == "DENY"
    sign_in(client, "sam")
    for page in ("review", "approvals", "audit", "ingest"):
        html = client.get(f"/console/{page}").text
        assert not INLINE_SCRIPT.search(html), f"/console/{page} has an inline script the CSP would block"
        assert " style=" not in html and "<style" not in html, f"/console/{page} has an inline style"
        assert not EVENT_HANDLER.search(html), f"/console/{page} has an inline event handler"


def test_signing_out_ends_the_sign_in_for_every_copy_of_the_cookie(client: TestClient) -> None:
    csrf = sign_in(client, "sam")
    name = get_console_settings().cookie_name
    stored = next(cookie for cookie in client.cookies.jar if cookie.name == name)
    copied = stored.value
    assert client.get("/console/review").status_code == 200
    out = client.post("/console/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    client.cookies.set(name, copied, domain=stored.domain, path=stored.path)
    replayed = client.get("/console/review")
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/console/login")
    sign_in(client, "sam")
    assert client.get("/console/review").status_code == 200
