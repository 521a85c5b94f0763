"""Dead letters keep the original bytes in the table; the topic gets them whole, or a reference when too large."""

from __future__ import annotations

import base64
import hashlib
import json

from streamdesk import db, topics
from streamdesk.contracts import DeadLetter
from streamdesk.ingest.exceptions import PayloadTooLarge
from streamdesk.streams.deadletter import dead_letter_for, store_dead_letters, topic_key, topic_value
from streamdesk.streams.messages import RawMessage


def letter_of(value: bytes, *, offset: int, headers: dict[str, str] | None = None) -> DeadLetter:
    message = RawMessage("raw.mapped", value, key=b"k", headers=headers or {}, offset=offset)
    return dead_letter_for(message, PayloadTooLarge(f"{len(value)} bytes"), stage="raw")


def test_a_dead_letter_too_large_for_its_topic_goes_there_as_a_reference_to_its_row(clean_db: str) -> None:
    big, small = b"x" * 1_500_000, b"{oops"
    letters = [letter_of(big, offset=1), letter_of(small, offset=2, headers={"trace": "a\x00b"})]
    with db.transaction(clean_db) as conn:
        ids = store_dead_letters(conn, letters=letters)
    with db.transaction(clean_db) as conn:
        assert store_dead_letters(conn, letters=letters) == ids  # a redelivery keeps its first row
        rows = dict(conn.execute("SELECT id, value FROM dead_letters").fetchall())
    assert {bytes(rows[ids[0]]), bytes(rows[ids[1]])} == {big, small}

    reference = json.loads(topic_value(letters[0], dead_letter_id=ids[0]))
    assert len(json.dumps(reference)) < topics.max_message_bytes(topics.DEAD_LETTER)
    assert reference["payload"] == "table" and reference["dead_letter_id"] == ids[0]
    assert reference["value_b64"] is None and reference["value_bytes"] == len(big)
    assert reference["value_sha256"] == hashlib.sha256(big).hexdigest()
    assert reference["reason"] == "PayloadTooLarge: 1500000 bytes"

    whole = json.loads(topic_value(letters[1], dead_letter_id=ids[1]))
    assert whole["payload"] == "inline" and base64.b64decode(whole["value_b64"]) == small
    assert whole["headers"] == {"trace": "a\ufffdb"}  # PostgreSQL jsonb cannot hold NUL
    assert topic_key(letters[1]) == b"raw.mapped/0/2"
