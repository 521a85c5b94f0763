"""The topic registry creates every topic, and the validating publisher delivers and refuses."""

import pytest
from confluent_kafka.admin import AdminClient

from streamdesk import topics
from streamdesk.exceptions import ContractError
from streamdesk.kafka import Publisher


def test_every_registered_topic_is_created_with_its_partitions(topics_ready: str) -> None:
    metadata = AdminClient({"bootstrap.servers": topics_ready}).list_topics(timeout=10)
    for spec in topics.registry().values():
        assert spec.name in metadata.topics
        assert len(metadata.topics[spec.name].partitions) == spec.partitions
    assert topics.ensure_topics(topics_ready) == []


def test_publisher_refuses_a_payload_that_breaks_the_contract(topics_ready: str) -> None:
    with Publisher(topics_ready) as publisher, pytest.raises(ContractError, match=r"document\.v1\.json"):
        publisher.publish(topics.DOCUMENT, {"schema_version": 1, "op": "upsert"}, key="x")
