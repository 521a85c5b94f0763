"""Authentication: API keys, operator bearer tokens, HS256 and RS256 JWTs (PEM key or JWKS); failures are 401."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI

from streamdesk.api.app import use_policy
from streamdesk.config import reset_settings
from streamdesk.exceptions import ConfigurationError
from streamdesk.policy.config import PolicySettings
from streamdesk.policy.exceptions import InvalidRulesError
from streamdesk.policy.rules import load_rules
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.config import ApiSettings
from tests.api.conftest import KID, Stack, auth, token_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROUTE = "/tickets"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_key_and_operator_bearer_token_both_work(stack: Stack) -> None:
    assert stack.client.get(ROUTE, headers=auth("viewer")).status_code == 200
    assert stack.client.get(ROUTE, headers=bearer(token_of("viewer"))).status_code == 200


def test_hs256_jwt_gives_sub_roles_and_tenant(stack: Stack) -> None:
    token = stack.jwt(sub="jo@example.test", roles="supervisor viewer")
    assert stack.client.get("/approvals", headers=bearer(token)).status_code == 200
    viewer = stack.jwt(roles=["viewer"])
    refused = stack.client.get("/approvals", headers=bearer(viewer))
    assert refused.status_code == 403 and "jo@example.test" in refused.json()["detail"]


def test_rs256_jwt_from_the_jwks_by_kid(stack: Stack) -> None:
    token = stack.jwt(algorithm="RS256", headers={"kid": KID})
    assert stack.client.get(ROUTE, headers=bearer(token)).status_code == 200
    unknown = stack.jwt(algorithm="RS256", headers={"kid": "rotated-away"})
    assert stack.client.get(ROUTE, headers=bearer(unknown)).status_code == 401


def test_rs256_jwt_from_a_pem_public_key(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMDESK_API__JWT_JWKS_PATH")
    monkeypatch.setenv("STREAMDESK_API__JWT_PUBLIC_KEY_PATH", str(stack.key_dir / "public.pem"))
    reset_settings()
    assert stack.client.get(ROUTE, headers=bearer(stack.jwt(algorithm="RS256"))).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = stack.jwt(algorithm="RS256", key=other)
    assert stack.client.get(ROUTE, headers=bearer(forged)).status_code == 401


def _forged(stack: Stack) -> str:
    return stack.jwt(key="another-secret-that-is-32-bytes-long!!")


def _unsigned(stack: Stack) -> str:
    return stack.jwt().rsplit(".", 1)[0] + "."


FAILURES = {
    "no credentials": lambda s: {},
    "unknown api key": lambda s: {"X-API-Key": "not-a-key"},
    "unknown bearer token": lambda s: bearer("not-a-token"),
    "empty bearer": lambda s: {"Authorization": "Bearer "},
    "basic scheme": lambda s: {"Authorization": "Basic dXNlcjpwYXNz"},
    "malformed jwt": lambda s: bearer("eyJhbGciOiJIUzI1NiJ9.garbage.sig"),
    "bad signature": lambda s: bearer(_forged(s)),
    "signature stripped": lambda s: bearer(_unsigned(s)),
    "expired": lambda s: bearer(s.jwt(exp=int(time.time()) - 3600)),
    "not yet valid": lambda s: bearer(s.jwt(nbf=int(time.time()) + 3600)),
    "wrong audience": lambda s: bearer(s.jwt(aud="another-service")),
    "wrong issuer": lambda s: bearer(s.jwt(iss="https://evil.example.test/")),
    "no subject": lambda s: bearer(s.jwt(sub=None)),
    "no expiry": lambda s: bearer(s.jwt(exp=None)),
}


@pytest.mark.parametrize("case", FAILURES, ids=str)
def test_bad_credentials_are_401_with_a_challenge(stack: Stack, case: str) -> None:
    response = stack.client.get(ROUTE, headers=FAILURES[case](stack))
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="streamdesk"')


def test_expired_jwt_says_so(stack: Stack) -> None:
    response = stack.client.get(ROUTE, headers=bearer(stack.jwt(exp=int(time.time()) - 3600)))
    assert "expired" in response.json()["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_jwt_roles_outside_people_grant_nothing(stack: Stack) -> None:
    for roles in (["service_agent"], ["root"], [], None):
        token = stack.jwt(roles=roles)
        assert stack.client.get(ROUTE, headers=bearer(token)).status_code == 403


def test_a_route_without_a_rule_is_denied_to_everyone(stack: Stack) -> None:
    router = APIRouter(dependencies=[Gate])

    @router.get("/unlisted")
    def unlisted(principal: PrincipalDep) -> dict[str, str]:
        return {"id": principal.id}

    app = FastAPI()
    use_policy(app)
    app.include_router(router, prefix="/extra")
    with TestClient(app) as client:
        response = client.get("/extra/unlisted", headers=auth("admin"))
    assert response.status_code == 403 and "has no rule" in response.json()["detail"]


def test_jwt_settings_refuse_half_configurations(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ISSUER", "AUDIENCE", "HS256_SECRET", "JWKS_PATH"):
        monkeypatch.delenv(f"STREAMDESK_API__JWT_{name}", raising=False)
    with pytest.raises(ConfigurationError, match="JWT_ISSUER"):
        ApiSettings(jwt_hs256_secret="x" * 40)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        ApiSettings(jwt_hs256_secret="short", jwt_issuer="i", jwt_audience="a")
    assert not ApiSettings().jwt_enabled


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("  GET /x: [root]\n", "unknown"),
        ("  FETCH /x: [admin]\n", "METHOD /path"),
        ("  GET /x: admin\n", "must list roles"),
    ],
)
def test_route_rules_are_checked(tmp_path: Path, routes: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: t\ntools: {}\nroutes:\n" + routes)
    with pytest.raises(InvalidRulesError, match=message):
        load_rules(settings=PolicySettings(rules_path=path))
