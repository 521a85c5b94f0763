"""Every class of bad input the ingest path knows, as raw messages, with good ones to interleave."""

from __future__ import annotations

import json

from streamdesk.config import IngestSettings
from streamdesk.streams.messages import RawMessage

MAX_BODY_BYTES = IngestSettings().max_body_bytes
"""The production default: 2 MB raw bodies against 1 MiB canonical and dead-letter topics."""
LONG_INT = b"9" * 5000


def article(article_id: str, *, text: str = "A valid article.", **extra: object) -> bytes:
    """A kb_article record for raw.mapped."""
    record = {"id": article_id, "title": f"Title {article_id}", "text": text, "updated_at": "2026-11-01T10:00:00Z"}
    return json.dumps(record | extra).encode()


def kb(value: bytes | None, *, mapping: str | None = "kb_article", **headers: str) -> RawMessage:
    """A raw.mapped message for `mapping`, with `headers`."""
    return RawMessage("raw.mapped", value, headers=({"mapping": mapping} if mapping else {}) | headers)


def order(order_id: int, *, total: str = "12.5", table: str = "orders") -> bytes:
    """A Debezium change event for raw.debezium.orders, `total` as raw JSON text."""
    source = f'{{"connector":"postgresql","lsn":{1000 + order_id},"txId":7,"table":"{table}"}}'
    return f'{{"op":"c","before":null,"after":{{"id":{order_id},"total":{total}}},"source":{source}}}'.encode()


def zendesk(event_id: str, *, kind: str = "ticket.created", time: str = "2026-11-01T10:00:00Z") -> bytes:
    """A Zendesk event webhook body for raw.zendesk."""
    detail = {"id": event_id.removeprefix("zd-"), "subject": "Help", "description": "It broke", "status": "new"}
    body = {"type": f"zen:event-type:{kind}", "id": event_id, "time": time, "detail": detail}
    return json.dumps(body).encode()


BAD: dict[str, RawMessage] = {
    "oversize body": kb(article("kb-big-body", text="x" * (MAX_BODY_BYTES + 100))),
    "oversize canonical event": kb(article("kb-big-event", text="y" * 1_100_000)),
    "invalid json": kb(b"{not json"),
    "truncated json": kb(b'{"id":"kb-cut","title":"T","te'),
    "bad utf-8": kb(b'{"id":"kb-\xff\xfe","title":"T","text":"x"}'),
    "over-long integer in value": kb(article("kb-long").replace(b'"text"', b'"views":' + LONG_INT + b',"text"')),
    "NaN": kb(article("kb-nan").replace(b'"text"', b'"score":NaN,"text"')),
    "Infinity": kb(article("kb-inf").replace(b'"text"', b'"score":-Infinity,"text"')),
    "float overflow": kb(article("kb-1e400").replace(b'"text"', b'"score":1e400,"text"')),
    "deep json": kb(b'{"id":"kb-deep","meta":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "schema violation": kb(json.dumps({"title": "no id"}).encode()),
    "superscript time": kb(article("kb-sup", updated_at="²")),
    "lone surrogate": kb(article("kb-surrogate").replace(b'"text": "A valid', b'"text": "\\ud800 A valid')),
    "unknown mapping": kb(article("kb-nomap"), mapping="no_such_mapping"),
    "no mapping header": kb(article("kb-nohdr"), mapping=None),
    "null value": kb(None),
    "NUL in a header": kb(b"[1, 2]", trace="a\x00b"),
    "NaN total": kb(b'{"ID":"inv-nan","invoiceDate":"2009-01-01 00:00:00","total":"NaN"}', mapping="chinook_invoice"),
    "over-long integer in key": RawMessage("raw.debezium.orders", order(901), key=b'{"id":' + LONG_INT + b"}"),
    "unknown table": RawMessage("raw.debezium.orders", order(902, table="secrets"), key=b'{"id":902}'),
    "NaN total (debezium)": RawMessage("raw.debezium.orders", order(903, total="NaN"), key=b'{"id":903}'),
    "NaN total as text": RawMessage("raw.debezium.orders", order(904, total='"NaN"'), key=b'{"id":904}'),
    "unknown event type": RawMessage("raw.zendesk", zendesk("zd-905", kind="ticket.exploded")),
    "superscript time (zendesk)": RawMessage("raw.zendesk", zendesk("zd-906", time="²")),
}


def good(n: int, topic: str) -> RawMessage:
    """The n-th valid message for `topic`."""
    if topic == "raw.debezium.orders":
        return RawMessage(topic, order(n), key=f'{{"id":{n}}}'.encode())
    if topic == "raw.zendesk":
        return RawMessage(topic, zendesk(f"zd-{n}"))
    return kb(article(f"kb-ok-{n}"))
