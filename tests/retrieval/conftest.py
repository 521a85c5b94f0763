"""Retrieval fixtures: a small permission-diverse knowledge base written through the real store and embedder."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from streamdesk.config import reset_settings
from streamdesk.contracts import DocumentEvent
from tests.retrieval.factories import document, store

TOPICS = {
    "refund": "Refunds go back to the original payment method within five business days after approval.",
    "shipping": "Parcels ship from the central warehouse; express delivery arrives the next working day.",
    "fraud": "Suspicious card transactions are frozen and the fraud team calls the account holder.",
    "password": "Reset a forgotten password from the sign-in page; the link expires after one hour.",
    "invoice": "Invoices are issued monthly and can be downloaded as PDF from the billing portal.",
    "warranty": "Hardware carries a two-year warranty covering manufacturing defects but not accidents.",
    "loan": "Personal loan applications need proof of income and are decided within three days.",
    "travel": "Notify us before travelling abroad so that foreign card payments are not declined.",
}
TENANTS = ("default", "acme")
LEVELS = ("public", "internal", "restricted")
GROUPS = ("fraud", "billing", "vip")
SOURCES = ("kb", "zendesk", "wordpress")
DOC_TYPES = ("kb_article", "faq", "policy")
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def knowledge_base(seed: int = 3, count: int = 48) -> list[DocumentEvent]:
    """`count` documents over every combination of tenant, access level, groups, source, type and time."""
    rng = random.Random(seed)
    docs = []
    names = list(TOPICS)
    for n in range(count):
        topic = names[n % len(names)]
        level = LEVELS[n % 3]
        groups = rng.sample(GROUPS, rng.randint(1, 2)) if level == "restricted" else []
        docs.append(
            document(
                f"doc-{n:03d}",
                f"{topic.title()} guide {n}",
                f"{TOPICS[topic]} Case {n} applies to {rng.choice(names)} questions too.",
                level=level,
                groups=groups,
                tenant=TENANTS[(n // 3) % 2],
                source=SOURCES[(n // 6) % 3],
                doc_type=DOC_TYPES[n % 3 if n % 2 else (n + 1) % 3],
                occurred_at=EPOCH + timedelta(days=7 * n),
            )
        )
    return docs


@pytest.fixture(scope="module")
def kb_url(database_url: str, truncate: Callable[[str], None]) -> Iterator[str]:
    """The session database holding only `knowledge_base()`, for the whole module."""
    truncate(database_url)
    reset_settings()
    store(database_url, knowledge_base())
    yield database_url
    truncate(database_url)
