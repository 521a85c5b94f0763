"""The semantic answer cache: similar queries hit, other scopes miss, a changed cited document invalidates."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from streamdesk import db
from streamdesk.identity.models import Principal
from streamdesk.knowledge import embedding
from streamdesk.retrieval import cache
from tests.retrieval.factories import document, store

pytestmark = [pytest.mark.slow, pytest.mark.stack]
ALICE = Principal.parse("user:alice?roles=agent")
BOB = Principal.parse("user:bob?roles=viewer")
FRAUD = Principal.parse("user:fay?roles=agent&groups=fraud")
CUSTOMER = Principal.parse("agent:c-7")


def remember(conn: psycopg.Connection, query: str, vector: np.ndarray, principal: Principal, *, cited: str) -> None:
    """Cache the answer "30 days" to `query` for `principal`'s scope, citing document `cited`."""
    cache.store(
        conn=conn,
        query=query,
        query_vector=vector,
        principal=principal,
        answer={"text": "30 days"},
        cited_documents=[cited],
    )


def test_similar_queries_in_the_same_scope_hit_and_other_scopes_miss(clean_db: str) -> None:
    store(clean_db, [document("returns", "Returns", "Items can be returned within 30 days.")])
    asked, similar, unrelated = embedding.get_embedder().embed(
        [
            "how many days do I have to return an item?",
            "how many days do I have to return an item",
            "what is the weather",
        ]
    )
    with db.connect(clean_db) as conn:
        remember(conn, "how many days do I have to return an item?", asked, ALICE, cited="kb:returns")
        hit = cache.lookup(conn=conn, query_vector=similar, principal=BOB)
        assert hit is not None and hit.answer == {"text": "30 days"} and hit.similarity > 0.95
        assert cache.lookup(conn=conn, query_vector=unrelated, principal=ALICE) is None
        assert cache.lookup(conn=conn, query_vector=asked, principal=FRAUD) is None, "a wider scope is another key"
        assert cache.lookup(conn=conn, query_vector=asked, principal=CUSTOMER) is None, "a narrower scope too"
        conn.commit()


def test_an_answer_is_invalidated_when_a_cited_document_changes_or_is_deleted(clean_db: str) -> None:
    store(
        clean_db,
        [
            document("returns", "Returns", "Items can be returned within 30 days."),
            document("shipping", "Shipping", "Orders ship within two days."),
        ],
    )
    vector = embedding.get_embedder().embed(["return window"])[0]
    with db.connect(clean_db) as conn:
        remember(conn, "return window", vector, ALICE, cited="kb:returns")
        remember(conn, "return window", vector, FRAUD, cited="kb:shipping")
        conn.commit()
    store(clean_db, [document("returns", "Returns", "Items can be returned within 30 days.")])
    with db.connect(clean_db) as conn:
        assert cache.lookup(conn=conn, query_vector=vector, principal=ALICE) is not None, (
            "an unchanged re-send keeps it"
        )
        conn.commit()
    store(clean_db, [document("returns", "Returns", "Items can be returned within 14 days.", version=2)])
    with db.connect(clean_db) as conn:
        assert cache.lookup(conn=conn, query_vector=vector, principal=ALICE) is None
        assert cache.lookup(conn=conn, query_vector=vector, principal=FRAUD) is not None
        conn.commit()
    store(clean_db, [document("shipping", "", "", op="delete", version=2)])
    with db.connect(clean_db) as conn:
        assert cache.lookup(conn=conn, query_vector=vector, principal=FRAUD) is None
