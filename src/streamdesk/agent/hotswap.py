"""Following the `model` topic: a promoted or rolled-back adapter is loaded beside the serving one, then swapped in.

Every agent worker reads the topic's partitions itself (assigned, not subscribed: no consumer group, so
each instance sees every event and no rebalance waits on another). An event only says that the serving
adapter changed; which one serves now is asked of the registry (`resolve`), so events read twice, late
or out of order all end on the registry's answer. The worker loads that adapter beside the others on
this thread (`prepare`) while the current ticket goes on under the old one, and the next ticket starts
under the new one (`service.AnswerService.settings_for_next_ticket`): an answer never mixes adapters.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, TopicPartition

from streamdesk import contracts, topics
from streamdesk.exceptions import ContractError

log = logging.getLogger(__name__)
MODEL_SCHEMA = "model.v1.json"
SWAP_ACTIONS = frozenset({"promoted", "rolled_back"})
"""Events that change the serving adapter (a registered candidate changes nothing)."""

Resolve = Callable[[], str | None]
"""The registry's serving adapter of the worker's base model (None: the base model)."""
Prepare = Callable[[str | None], None]
"""Load an adapter (None: the base model) for the next ticket; raises when it cannot."""


@dataclass(frozen=True)
class Swap:
    """One change of the adapter the next ticket runs under, and how long after its `model` event it was ready."""

    adapter: str | None
    previous: str | None
    event_id: str
    swap_s: float

    def describe(self) -> str:
        """The log line a swap leaves (`bench hotswap` reads `swap_s` from it)."""
        record = {"adapter": self.adapter, "previous": self.previous, "event_id": self.event_id}
        return "adapter swap " + json.dumps(record | {"swap_s": round(self.swap_s, 3)})


def model_change(payload: bytes, *, base_model: str) -> dict[str, object] | None:
    """The `model` event in `payload` when it changes what `base_model` serves; None for anything else."""
    event = json.loads(payload)
    contracts.validate(MODEL_SCHEMA, event)
    if event["action"] not in SWAP_ACTIONS or event["base_model"] != base_model:
        return None
    return dict(event)


class AdapterFollower:
    """A thread that reads the `model` topic and has each serving-adapter change prepared for the next ticket."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        base_model: str,
        serving: str | None,
        prepare: Prepare,
        resolve: Resolve | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.base_model = base_model
        self.serving = serving
        self.prepare = prepare
        self.resolve = resolve
        self.poll_s = poll_s
        self.swaps: list[Swap] = []
        self.ready = threading.Event()
        """Set once the topic is assigned and the registry's adapter prepared."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adapter-follower", daemon=True)

    def start(self) -> AdapterFollower:
        """Start following; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop following and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _consumer(self) -> Consumer:
        """A consumer assigned at the end of every partition of the topic; the registry covers what came before."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": "streamdesk-agent-adapters",  # required by librdkafka; never joined, never committed
                "enable.auto.commit": False,
            }
        )
        metadata = consumer.list_topics(topics.MODEL, timeout=30)
        partitions = sorted(metadata.topics[topics.MODEL].partitions) if topics.MODEL in metadata.topics else [0]
        starts = []
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topics.MODEL, partition), timeout=30)
            starts.append(TopicPartition(topics.MODEL, partition, max(high - 1, 0)))
        consumer.assign(starts)
        return consumer

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow_topic()
            except Exception:
                log.exception("following the %s topic failed; again in 5 s (serving %s)", topics.MODEL, self.serving)
                self._stop.wait(5.0)

    def _follow_topic(self) -> None:
        consumer = self._consumer()
        try:
            self.follow(self.serving, event_id="start", occurred_at=None)  # anything promoted before the assignment
            self.ready.set()
            while not self._stop.is_set():
                message = consumer.poll(self.poll_s)
                payload = None if message is None or message.error() is not None else message.value()
                if not payload:
                    continue
                try:
                    event = model_change(payload, base_model=self.base_model)
                except (ValueError, ContractError) as exc:
                    log.warning("ignoring a %s record: %s", topics.MODEL, exc)
                    continue
                if event is not None:
                    occurred = datetime.fromisoformat(str(event["occurred_at"]))
                    named = None if event["version"] is None else str(event["version"])
                    self.follow(named, event_id=str(event["event_id"]), occurred_at=occurred)
        finally:
            consumer.close()

    def follow(self, named: str | None, *, event_id: str, occurred_at: datetime | None) -> Swap | None:
        """Prepare the adapter now serving (the registry's, else the one the event names) unless it already serves."""
        try:
            target = self.resolve() if self.resolve is not None else named
        except Exception:
            log.exception("cannot read the serving adapter after %s; keeping %s", event_id, self.serving)
            return None
        if target == self.serving:
            return None
        try:
            self.prepare(target)
        except Exception:
            log.exception("cannot load adapter %s; keeping %s", target, self.serving)
            return None
        waited = time.time() - occurred_at.timestamp() if occurred_at is not None else 0.0
        swap = Swap(adapter=target, previous=self.serving, event_id=event_id, swap_s=waited)
        self.serving = target
        self.swaps.append(swap)
        log.info(swap.describe())
        return swap
