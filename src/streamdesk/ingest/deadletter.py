"""Dead letters: the original bytes and the reason, in the `deadletter` topic and table."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from connectors.base import RawMessage
from streamdesk.contracts import DeadLetter, Stage
from streamdesk.ingest.policy import describe


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def dead_letter_for(message: RawMessage, exc: BaseException, *, stage: Stage) -> DeadLetter:
    """The dead-letter record of `message`, which failed with `exc` at `stage`."""
    return DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key_b64=_b64(message.key),
        value_b64=_b64(message.value),
        headers=dict(message.headers),
        reason=describe(exc),
        error_type=type(exc).__name__,
        stage=stage,
    )


def store_dead_letters(conn: psycopg.Connection, *, letters: Sequence[DeadLetter]) -> None:
    """Insert the records; a redelivered message does not make a second row."""
    if not letters:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO dead_letters
                (topic, partition, "offset", key, value, headers, reason, error_type, stage)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (topic, partition, "offset", stage) DO NOTHING
            """,
            [
                (
                    d.topic,
                    d.partition,
                    d.offset,
                    None if d.key_b64 is None else base64.b64decode(d.key_b64),
                    None if d.value_b64 is None else base64.b64decode(d.value_b64),
                    Jsonb(d.headers),
                    d.reason,
                    d.error_type,
                    d.stage,
                )
                for d in letters
            ],
        )
