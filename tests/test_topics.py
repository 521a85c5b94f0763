"""The topic registry creates every topic, and the validating publisher delivers and refuses."""

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streamdesk import topics
from streamdesk.config import get_settings
from streamdesk.exceptions import ConfigurationError, ContractError
from streamdesk.kafka import Publisher, PublishError


def test_every_registered_topic_is_created_with_its_partitions(topics_ready: str) -> None:
    metadata = AdminClient({"bootstrap.servers": topics_ready}).list_topics(timeout=10)
    for spec in topics.registry().values():
        assert spec.name in metadata.topics
        assert len(metadata.topics[spec.name].partitions) == spec.partitions
    assert topics.ensure_topics(topics_ready) == []


def test_publisher_refuses_a_payload_that_breaks_the_contract(topics_ready: str) -> None:
    with Publisher(topics_ready) as publisher, pytest.raises(ContractError, match=r"document\.v1\.json"):
        publisher.publish(topics.DOCUMENT, {"schema_version": 1, "op": "upsert"}, key="x")


def test_raw_topics_take_the_body_limit_and_the_others_the_registry_limit() -> None:
    settings = get_settings()
    raw = topics.max_message_bytes("raw.zendesk")
    assert raw == settings.ingest.max_body_bytes + topics.RAW_ENVELOPE_BYTES
    assert topics.max_message_bytes(topics.DOCUMENT) == topics.max_message_bytes(topics.DEAD_LETTER) == 1_048_576
    assert topics.max_producer_bytes() == raw


def test_a_raw_topic_may_not_set_its_own_limit(tmp_path: Path) -> None:
    registry = tmp_path / "topics.yaml"
    registry.write_text(
        "defaults: {max_message_bytes: 1048576}\n"
        "topics:\n  - {name: raw.x, schema: raw/x.v1.json, family: mapped, max_message_bytes: 100}\n"
    )
    with pytest.raises(ConfigurationError, match="STREAMDESK_INGEST__MAX_BODY_BYTES"):
        topics.load_registry(registry)


def test_topics_are_created_with_their_message_limit(topics_ready: str) -> None:
    admin = AdminClient({"bootstrap.servers": topics_ready})
    for name in ("raw.zendesk", topics.DOCUMENT, topics.DEAD_LETTER):
        [configs] = admin.describe_configs([ConfigResource("topic", name)]).values()
        assert configs.result(10)["max.message.bytes"].value == str(topics.max_message_bytes(name))


def test_publisher_delivers_a_body_up_to_the_ingest_limit_and_refuses_a_record_over_its_topic_limit(
    topics_ready: str,
) -> None:
    body = b'{"pad": "' + b"x" * 1_500_000 + b'"}'
    with Publisher(topics_ready) as publisher:
        publisher.publish("raw.zendesk", body, key="big")  # over librdkafka's 1 MB default
        with pytest.raises(PublishError, match="max_message_bytes=1048576"):
            publisher.publish(topics.DOCUMENT, body, key="big")
    assert publisher.delivered == 1
