"""What the store holds and how far the ingest worker is behind."""

from __future__ import annotations

from typing import Any

import psycopg

from streamdesk import topics
from streamdesk.lag import consumer_lag

INGEST_GROUP = "streamdesk-ingest"


def store_counts(conn: psycopg.Connection) -> dict[str, Any]:
    """Row counts of the ingest store, by kind."""
    row = conn.execute(
        """
        SELECT
          (SELECT count(*) FROM documents WHERE NOT deleted),
          (SELECT count(*) FROM chunks),
          (SELECT count(*) FROM tickets),
          (SELECT count(*) FROM dead_letters)
        """
    ).fetchone()
    assert row is not None
    entities: dict[str, int] = dict(
        conn.execute(
            "SELECT entity_type, count(*) FROM entities WHERE NOT deleted GROUP BY entity_type ORDER BY 1"
        ).fetchall()
    )
    return {
        "documents": row[0],
        "chunks": row[1],
        "tickets": row[2],
        "dead_letters": row[3],
        "entities": entities,
    }


def ingest_lag(bootstrap_servers: str) -> dict[str, int]:
    """Unprocessed messages per topic the ingest worker consumes."""
    names = [s.name for s in topics.raw_topics()] + [topics.DOCUMENT, topics.ENTITY, topics.TICKET]
    return consumer_lag(bootstrap_servers, group=INGEST_GROUP, topic_names=names)
