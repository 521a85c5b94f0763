"""Consumer-group lag: how far a group's committed offsets are behind the end of its topics."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition


def partition_lag(
    bootstrap_servers: str, *, group: str, topic_names: Iterable[str], timeout_s: float = 10.0
) -> dict[tuple[str, int], int]:
    """Messages not yet committed by `group`, per (topic, partition); topics the broker lacks are left out."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group, "enable.auto.commit": False})
    try:
        lag: dict[tuple[str, int], int] = {}
        metadata = consumer.list_topics(timeout=timeout_s)
        for name in topic_names:
            if name not in metadata.topics:
                continue
            partitions = [TopicPartition(name, p) for p in metadata.topics[name].partitions]
            for tp in consumer.committed(partitions, timeout=timeout_s):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, tp.partition), timeout=timeout_s)
                position = tp.offset if tp.offset >= 0 else low
                lag[(name, tp.partition)] = max(0, high - position)
        return lag
    finally:
        consumer.close()


def consumer_lag(bootstrap_servers: str, *, group: str, topic_names: Iterable[str]) -> dict[str, int]:
    """Messages not yet committed by `group`, per topic."""
    names = list(topic_names)
    per_partition = partition_lag(bootstrap_servers, group=group, topic_names=names)
    totals: dict[str, int] = {}
    for (name, _), lag in per_partition.items():
        totals[name] = totals.get(name, 0) + lag
    return totals
