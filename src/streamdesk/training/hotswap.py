"""Hot swap: route each request to the adapter serving when it started, and switch adapters without a restart.

Each adapter version is loaded under its own name, so a request names its adapter explicitly and the
backend activates it under its generation lock: a request that started before a promotion finishes on the
old adapter, and no request ever runs on a mix of two. `activate` first runs the new adapter once (one
token) so a broken adapter never receives traffic, then flips the route under the router's lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from streamdesk.agent.backends import LLMBackend
from streamdesk.agent.models import Generation, Message
from streamdesk.training.models import ModelEvent

WARMUP: list[Message] = [{"role": "user", "content": "ping"}]


@dataclass(frozen=True)
class RoutedGeneration:
    """A generation and the adapter that was serving when its request started."""

    generation: Generation
    adapter: str | None


class AdapterRouter:
    """Thread-safe routing of requests to the serving LoRA adapter (None: the base model) of one backend."""

    def __init__(self, *, backend: LLMBackend, active: str | None = None) -> None:
        self.backend = backend
        self._active = active
        self._lock = threading.Lock()
        self._in_flight: Counter[str | None] = Counter()

    @property
    def active(self) -> str | None:
        """The adapter new requests are routed to."""
        with self._lock:
            return self._active

    def in_flight(self) -> dict[str | None, int]:
        """Requests running now, per adapter."""
        with self._lock:
            return {name: count for name, count in self._in_flight.items() if count}

    @contextmanager
    def pinned(self) -> Iterator[str | None]:
        """The adapter serving now, held for a whole conversation: every step of it uses the same adapter."""
        with self._lock:
            adapter = self._active
            self._in_flight[adapter] += 1
        try:
            yield adapter
        finally:
            with self._lock:
                self._in_flight[adapter] -= 1

    def generate(self, messages: Sequence[Message], **options: Any) -> RoutedGeneration:
        """Generate with the adapter serving when the request starts; the result records which one."""
        with self.pinned() as adapter:
            generation = self.backend.generate(messages, adapter=adapter, **options)
        return RoutedGeneration(generation=generation, adapter=adapter)

    def activate(self, adapter: str | None, *, warm_up: bool = True) -> str | None:
        """Route new requests to `adapter` (None: the base model) after one warm-up token; return the old one."""
        if warm_up and adapter is not None:
            self.backend.generate(WARMUP, max_new_tokens=1, adapter=adapter)
        with self._lock:
            previous, self._active = self._active, adapter
        return previous

    def apply(self, event: ModelEvent) -> str | None:
        """Follow a `model` topic event: promotions and rollbacks switch the route, candidates do not."""
        if event.action == "candidate":
            return self.active
        self.activate(event.version)
        return event.version
