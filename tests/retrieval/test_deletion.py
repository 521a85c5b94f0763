"""Deleted documents vanish from every search mode."""

from __future__ import annotations

import pytest

from streamdesk import db
from streamdesk.identity.models import Principal
from streamdesk.retrieval import service
from tests.retrieval.factories import document, store

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def test_deleted_documents_vanish_from_results(clean_db: str) -> None:
    principal = Principal.parse("user:alice?roles=agent")
    store(
        clean_db,
        [
            document("gone", "Lost luggage claims", "Claims for lost luggage need the baggage tag."),
            document("kept", "Seat upgrades", "Seat upgrades can be bought at the gate."),
        ],
    )
    with db.connect(clean_db) as conn:
        before = service.search(conn=conn, query="lost luggage claim", principal=principal, k=5)
    assert before.hits[0].citation.external_id == "gone"
    store(clean_db, [document("gone", "", "", op="delete", version=2)])
    for mode in ("hybrid", "vector", "lexical"):
        with db.connect(clean_db) as conn:
            after = service.search(conn=conn, query="lost luggage claim", principal=principal, k=5, mode=mode)
        assert "gone" not in {h.citation.external_id for h in after.hits}, mode
