"""Pure gateway logic: topics, keys, delivery ids, mapping names, body checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamdesk.gateway import service
from streamdesk.gateway.exceptions import InvalidPayloadError, PayloadTooLargeError, UnknownSourceError
from streamdesk.gateway.models import SOURCES
from streamdesk.gateway.signatures import SignedRequest


def test_every_source_publishes_to_the_raw_topic_of_its_family() -> None:
    topics = {name: service.raw_topic(source=source) for name, source in SOURCES.items()}
    assert topics == {
        "salesforce": "raw.salesforce",
        "hubspot": "raw.hubspot",
        "zendesk": "raw.zendesk",
        "wordpress": "raw.wordpress",
        "contentful": "raw.contentful",
        "stripe": "raw.stripe",
        "generic": "raw.mapped",
    }


def test_unknown_source_names_the_ones_served() -> None:
    with pytest.raises(UnknownSourceError, match=r"'jira'.*contentful, generic, hubspot"):
        service.get_source(name="jira")


def test_keys_come_from_vendor_object_ids(shared_data: Path) -> None:
    zendesk = json.loads(
        (shared_data / "cdc/zendesk/dust_zendesk_ticket_webhook_events.jsonl").read_text().split("\n")[0]
    )
    salesforce = json.loads((shared_data / "cdc/salesforce/pozil_pubsub_account_change_event_update.json").read_text())
    key = service.record_key
    assert key(source=SOURCES["zendesk"], payload=zendesk, fallback="d") == "5158"
    assert key(source=SOURCES["salesforce"], payload=salesforce, fallback="d") == "0014H00002LbR7QQAV"
    assert key(source=SOURCES["hubspot"], payload=[{"objectId": 123, "eventId": 1}], fallback="d") == "123"
    assert key(
        source=SOURCES["stripe"], payload={"id": "evt_1", "data": {"object": {"id": "cus_9"}}}, fallback="d"
    ) == ("cus_9")
    assert key(source=SOURCES["contentful"], payload={"sys": {"id": "entry-7"}}, fallback="d") == "entry-7"
    assert key(source=SOURCES["wordpress"], payload={"ID": 4, "post_title": "x"}, fallback="d") == "4"
    assert key(source=SOURCES["generic"], payload={"id": True}, fallback="d") == "d"
    assert key(source=SOURCES["hubspot"], payload={"unexpected": []}, fallback="d") == "d"


def test_the_replay_key_is_a_digest_of_the_signature_and_the_vendor_id_only_a_trace() -> None:
    zendesk = SOURCES["zendesk"]
    with_header = SignedRequest("POST", "http://x/", b"{}", {"X-Zendesk-Webhook-Invocation-Id": "8350205582"})
    key = service.delivery_id(signature="sig")
    assert key.startswith("sha256:") and len(key) == 71
    assert service.delivery_id(signature="sig") == key != service.delivery_id(signature="sig2")
    assert service.vendor_delivery_id(source=zendesk, request=with_header) == "8350205582"
    assert service.vendor_delivery_id(source=SOURCES["stripe"], request=with_header) is None
    long_header = SignedRequest("POST", "http://x/", b"{}", {"X-Zendesk-Webhook-Invocation-Id": "i" * 300})
    assert service.vendor_delivery_id(source=zendesk, request=long_header) == "i" * 256


def test_generic_mapping_names_are_required_and_plain() -> None:
    assert service.check_mapping(mapping="crm.accounts_v2") == "crm.accounts_v2"
    for bad in (None, "", "../etc", "a" * 65, "x y"):
        with pytest.raises(InvalidPayloadError, match="mapping=NAME"):
            service.check_mapping(mapping=bad)


def test_bodies_must_be_json_and_within_the_limit() -> None:
    assert service.parse_json(body=b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidPayloadError, match="not valid JSON at char 8"):
        service.parse_json(body=b'{"a": 1,')
    with pytest.raises(InvalidPayloadError, match="not UTF-8"):
        service.parse_json(body=b'{"a": "\xff"}')
    service.check_size(size=10, limit=10)
    with pytest.raises(PayloadTooLargeError, match="11 bytes exceeds the 10-byte limit"):
        service.check_size(size=11, limit=10)
