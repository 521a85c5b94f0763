"""Inputs Python cannot represent are ConnectorErrors naming the problem, never a stray ValueError or a null."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError, MalformedJson, decode_json
from connectors.registry import connector_for
from streamdesk.contracts import EntityEvent
from tests.connectors.helpers import message, valid

LONG_INT = "9" * 5000
ORDER_SOURCE = {"connector": "postgresql", "lsn": 10, "txId": 1, "table": "orders"}


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (f'{{"n": {LONG_INT}}}'.encode(), ConnectorError, "integer of more than 4300 digits"),
        (b'{"n": NaN}', MalformedJson, "NaN is not JSON"),
        (b'{"n": -Infinity}', MalformedJson, "Infinity is not JSON"),
        (b'{"n": 1e400}', ConnectorError, "out of range for a 64-bit float"),
        (b"[" * 100_000 + b"]" * 100_000, ConnectorError, "nested too deeply"),
        (b'{"n": "\xff"}', MalformedJson, "not UTF-8"),
    ],
)
def test_json_that_python_cannot_hold_is_a_connector_error(data: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        decode_json(data)


def test_an_over_long_integer_in_a_debezium_key_is_an_error_not_a_text_key() -> None:
    value = {"op": "c", "after": {"id": 1, "total": 5}, "source": ORDER_SOURCE}
    with pytest.raises(ConnectorError, match="key has an integer of more than 4300 digits"):
        connector_for("debezium").parse(message("raw.debezium.orders", value, key=f'{{"id":{LONG_INT}}}'.encode()))
    [text_key] = valid(connector_for("debezium").parse(message("raw.debezium.orders", value, key=b"ord-7")))
    assert isinstance(text_key, EntityEvent) and text_key.external_id == "ord-7"  # a StringConverter's text key


@pytest.mark.parametrize("total", ["NaN", "Infinity", "-inf", "1" + "0" * 400])
def test_a_non_finite_total_is_an_error_instead_of_null(total: str) -> None:
    value = {"op": "c", "after": {"id": 1, "total": total}, "source": ORDER_SOURCE}
    with pytest.raises(ConnectorError, match=r"order total .* not a finite number"):
        connector_for("debezium").parse(message("raw.debezium.orders", value))
    invoice = {"ID": "1", "invoiceDate": "2009-01-01 00:00:00", "total": total}
    with pytest.raises(ConnectorError, match="not a finite number"):
        connector_for("mapped").parse(message("raw.mapped", invoice, headers={"mapping": "chinook_invoice"}))


@pytest.mark.parametrize("stamp", ["²", "١٢٣", "-²", "1" * 5000])
def test_digit_like_time_text_is_an_error(stamp: str) -> None:
    webhook = {"type": "zen:event-type:ticket.created", "id": "e1", "time": stamp, "detail": {"id": "1"}}
    record = {"url": "https://x.zendesk.com/api/v2/tickets/5.json", "id": 5, "updated_at": stamp}
    for value in (webhook, record):
        with pytest.raises(ConnectorError, match="Zendesk"):
            connector_for("zendesk").parse(message("raw.zendesk", value))
    article = {"id": "kb-1", "title": "T", "text": "x", "updated_at": stamp}
    with pytest.raises(ConnectorError, match=r"updated_at|iso_to_epoch_ms"):
        connector_for("mapped").parse(message("raw.mapped", article, headers={"mapping": "kb_article"}))


def test_epoch_text_in_ascii_digits_is_still_a_time() -> None:
    record = {"url": "https://x.zendesk.com/api/v2/tickets/5.json", "id": 5, "updated_at": "1700000000000"}
    [event] = valid(connector_for("zendesk").parse(message("raw.zendesk", record)))
    assert event.version[0] == 1_700_000_000_000  # type: ignore[union-attr]
