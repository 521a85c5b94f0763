"""Dead letters: the original bytes and the reason, in the `deadletter` table and topic.

The table always keeps the original bytes. The topic carries them too when the record fits the topic's
`max_message_bytes`; otherwise it carries a reference (row id, size, SHA-256 and reason) to the table row.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from streamdesk import topics
from streamdesk.contracts import DeadLetter, Stage
from streamdesk.kafka import Publisher
from streamdesk.streams.errors import describe
from streamdesk.streams.messages import RawMessage


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _no_nul(text: str) -> str:
    """`text` without NUL characters, which PostgreSQL text and jsonb cannot hold."""
    return text.replace("\x00", "\ufffd")


def dead_letter_for(message: RawMessage, exc: BaseException, *, stage: Stage) -> DeadLetter:
    """The dead-letter record of `message`, which failed with `exc` at `stage`."""
    return DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key_b64=_b64(message.key),
        value_b64=_b64(message.value),
        headers={_no_nul(name): _no_nul(value) for name, value in message.headers.items()},
        reason=describe(exc),
        error_type=type(exc).__name__,
        stage=stage,
        value_bytes=None if message.value is None else len(message.value),
        value_sha256=None if message.value is None else hashlib.sha256(message.value).hexdigest(),
    )


def store_dead_letters(conn: psycopg.Connection, *, letters: Sequence[DeadLetter]) -> list[int]:
    """Insert the records and return their row ids; a redelivered message keeps its first row."""
    if not letters:
        return []
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO dead_letters
                (topic, partition, "offset", key, value, headers, reason, error_type, stage)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (topic, partition, "offset", stage) DO UPDATE SET stage = EXCLUDED.stage
            RETURNING id
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
            returning=True,
        )
        ids = []
        while True:
            ids.append(int(cur.fetchone()[0]))  # type: ignore[index]
            if not cur.nextset():
                return ids


def topic_key(letter: DeadLetter) -> bytes:
    """The `deadletter` topic key: where the original message was."""
    return f"{letter.topic}/{letter.partition}/{letter.offset}".encode()


def natural_key(letter: DeadLetter) -> tuple[str, int, int, str]:
    """What identifies a dead letter's row: the message's place and the hop that rejected it."""
    return letter.topic, letter.partition, letter.offset, letter.stage


def topic_value(letter: DeadLetter, *, dead_letter_id: int | None) -> bytes:
    """The `deadletter` topic value: the whole record if it fits the topic, else a reference to its table row."""
    full = letter.model_copy(update={"dead_letter_id": dead_letter_id})
    value = full.model_dump_json().encode()
    if topics.record_bytes(key=topic_key(letter), value=value) <= topics.max_message_bytes(topics.DEAD_LETTER):
        return value
    reference = full.model_copy(update={"key_b64": None, "value_b64": None, "headers": {}, "payload": "table"})
    return reference.model_dump_json().encode()


def announce(publisher: Publisher, letters: Sequence[DeadLetter], ids: Sequence[int]) -> None:
    """Publish stored dead letters (their row ids in `ids`) on the `deadletter` topic; the caller flushes."""
    for letter, row_id in zip(letters, ids, strict=True):
        publisher.publish(topics.DEAD_LETTER, topic_value(letter, dead_letter_id=row_id), key=topic_key(letter))
