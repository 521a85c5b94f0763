"""The raw message is the stream runtime's; connectors read the same type through their base module."""

from __future__ import annotations

from connectors import base
from streamdesk.streams.messages import RawMessage, kafka_headers


def test_connectors_read_the_stream_runtimes_raw_message() -> None:
    assert base.RawMessage is RawMessage


def test_headers_go_to_kafka_as_utf8_bytes_and_none_when_there_are_none() -> None:
    assert kafka_headers({"traceparent": "00-ab", "name": "café"}) == {"traceparent": b"00-ab", "name": "café".encode()}
    assert kafka_headers({}) is None
