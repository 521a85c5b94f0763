"""Consumer-group lag: how far a group's committed offsets are behind the end of its topics."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition


def consumer_lag(bootstrap_servers: str, *, group: str, topic_names: Iterable[str]) -> dict[str, int]:
    """Messages not yet committed by `group`, per topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group, "enable.auto.commit": False})
    try:
        lag: dict[str, int] = {}
        metadata = consumer.list_topics(timeout=10)
        for name in topic_names:
            if name not in metadata.topics:
                continue
            partitions = [TopicPartition(name, p) for p in metadata.topics[name].partitions]
            committed = consumer.committed(partitions, timeout=10)
            total = 0
            for tp in committed:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, tp.partition), timeout=10)
                position = tp.offset if tp.offset >= 0 else low
                total += max(0, high - position)
            lag[name] = total
        return lag
    finally:
        consumer.close()
