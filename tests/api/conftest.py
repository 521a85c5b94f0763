"""API fixtures: one real embedded stack per module (session PostgreSQL, a Tansu broker), operators per role,
JWT keys (HS256 secret, RS256 key pair as PEM and JWKS), and seeded rows every route can act on."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from confluent_kafka import Consumer, TopicPartition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from streamdesk import db, topics
from streamdesk.agent import conversations
from streamdesk.agent.answers import TraceStep
from streamdesk.config import reset_settings
from streamdesk.contracts import utcnow
from streamdesk.identity.models import agent_for_customer
from streamdesk.policy import approvals
from streamdesk.runtime.embedded import EmbeddedBroker, free_port
from streamdesk.training import registry
from streamdesk.training import service as training
from tests.conftest import truncate_all
from tests.factories import stored_dead_letter, stored_draft, stored_ticket

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROLES = ("viewer", "agent", "supervisor", "admin", "auditor")
ISSUER = "https://idp.example.test/"
AUDIENCE = "streamdesk-api"
HS256_SECRET = "test-hs256-secret-of-at-least-32-bytes!"
KID = "test-key-1"


def token_of(role: str) -> str:
    """The API key of the operator holding `role`."""
    return f"{role}-api-key-0123456789"


OTHER_TENANT = "acme"
OTHER_AUDITOR_TOKEN = "acme-auditor-api-key-0123456789"
OPERATORS: dict[str, dict[str, Any]] = {f"{role}-op": {"roles": [role], "token": token_of(role)} for role in ROLES}
OPERATORS["acme-auditor"] = {"roles": ["auditor"], "token": OTHER_AUDITOR_TOKEN, "tenant": OTHER_TENANT}


@dataclass
class Stack:
    """The running app and what was seeded for the routes to act on."""

    client: TestClient
    bootstrap: str
    database_url: str
    private_key: rsa.RSAPrivateKey
    key_dir: Path
    ids: dict[str, str]

    def jwt(
        self, *, algorithm: str = "HS256", key: Any = None, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A token with valid defaults (sub, iss, aud, exp in 5 minutes, admin), overridden by `claims`."""
        now = int(time.time())
        payload = {"sub": "jo@example.test", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
        payload |= {"roles": ["admin"]} | claims
        payload = {name: value for name, value in payload.items() if value is not None}
        if key is None:
            key = HS256_SECRET if algorithm == "HS256" else self.private_key
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every JSON message now on `topic`, partition by partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-api-{uuid.uuid4()}"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        found: list[dict[str, Any]] = []
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            seen = low
            deadline = time.monotonic() + 15
            while seen < high and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    found.append(json.loads(message.value()))
                    seen = message.offset() + 1
        return found
    finally:
        consumer.close()


def _write_keys(key_dir: Path) -> rsa.RSAPrivateKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (key_dir / "public.pem").write_bytes(public_pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    (key_dir / "jwks.json").write_text(json.dumps({"keys": [jwk | {"kid": KID, "use": "sig", "alg": "RS256"}]}))
    return private_key


def _seed(url: str, tmp: Path) -> dict[str, str]:
    """A ticket with an answer, a pending action, a candidate adapter and a dead letter."""
    now = utcnow()
    with db.connect(url, autocommit=True) as conn:
        ticket = stored_ticket(
            conn,
            "T-1",
            occurred_at=now,
            subject="Where is my order?",
            body="Order #W1 has not arrived.",
            status="open",
            customer_id="cust-1",
        )
        answer = stored_draft(
            conn,
            ticket,
            "Your order ships tomorrow.",
            customer_id="cust-1",
            citations=["kb:shipping#0"],
            trace=[TraceStep(index=0, source="model", tool="get_order_details", outcome="ok", decision="allowed")],
            model="test-model",
            prompt_version="p1",
        )
        thread = {"source": "zendesk", "ticket_id": "T-1"}
        conversations.record_customer_message(
            conn, **thread, tenant="default", event_id=ticket.event_id, text=ticket.body or ""
        )
        turn = conversations.TurnOutcome(
            customer_id="cust-1", identified_by="ticket_customer_id", open_request=None, held_actions=[], facts=[],
            pending_action_ids=[], decision="answered",
        )  # fmt: skip
        conversations.record_agent_turn(
            conn, **thread, event_id=ticket.event_id, answer_id=answer.answer_id, text=answer.text, outcome=turn
        )
        action = approvals.propose(
            conn,
            ticket_id="zendesk:T-1",
            tool_name="cancel_pending_order",
            arguments={"order_id": "#W1", "reason": "no longer needed"},
            principal=agent_for_customer("cust-1"),
            idempotency_key="api-test-key",
        )
        staging = tmp / "staging"
        staging.mkdir()
        (staging / "adapter_config.json").write_text("{}")
        version = registry.register_candidate(
            conn,
            staging_dir=staging,
            adapters_dir=tmp / "adapters",
            base_model=training.BASE_MODEL,
            parent=None,
            dataset_digest="0" * 64,
            config={},
            metrics={"examples": 8},
        )
        stored_dead_letter(
            conn, offset=7, value_b64="bm90IGpzb24=", reason="payload is not JSON", error_type="JSONDecodeError"
        )
    return {"answer_id": answer.answer_id, "action_id": action.id, "version": version.version}


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The app over the session database and a module broker, with every registered topic created."""
    tmp = tmp_path_factory.mktemp("api")
    broker = EmbeddedBroker(free_port(), tmp / "tansu.log").start()
    key_dir = tmp / "keys"
    key_dir.mkdir()
    private_key = _write_keys(key_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", database_url)
        mp.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
        mp.setenv("STREAMDESK_IDENTITY__OPERATORS", json.dumps(OPERATORS))
        mp.setenv("STREAMDESK_API__JWT_ISSUER", ISSUER)
        mp.setenv("STREAMDESK_API__JWT_AUDIENCE", AUDIENCE)
        mp.setenv("STREAMDESK_API__JWT_HS256_SECRET", HS256_SECRET)
        mp.setenv("STREAMDESK_API__JWT_JWKS_PATH", str(key_dir / "jwks.json"))
        mp.setenv("STREAMDESK_STATE_DIR", str(tmp / "state"))
        reset_settings()
        try:
            topics.ensure_topics(broker.bootstrap_servers)
            truncate_all(database_url)
            ids = _seed(database_url, tmp)
            from streamdesk.api.app import create_app

            with TestClient(create_app()) as client:
                yield Stack(client, broker.bootstrap_servers, database_url, private_key, key_dir, ids)
        finally:
            broker.stop()
            reset_settings()


def auth(role: str) -> dict[str, str]:
    """Headers carrying the API key of the operator holding `role`."""
    return {"X-API-Key": token_of(role)}
