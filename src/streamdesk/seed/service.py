"""Publish the seed sets (the retail ERP snapshot, knowledge articles) and change streams to the broker."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from streamdesk import topics
from streamdesk.config import get_settings
from streamdesk.kafka import Publisher
from streamdesk.seed import knowledge, taubench, tickets
from streamdesk.seed.changes import ChangeStream
from streamdesk.seed.config import default_shared_data
from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.wire import DebeziumLog, KbArticle, RawRecord, kb_article_record

log = logging.getLogger(__name__)

SEED_SETS = {
    "taubench": ("taubench",),
    "knowledge": ("help", "policy"),
    "help": ("help",),
    "policy": ("policy",),
    "banking": ("banking",),
    "requesters": ("requesters",),
    "tickets": ("tickets",),
}


@dataclass
class ReplaySummary:
    """What a replay published: messages per topic, and the file each seed set was read from."""

    counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        """Messages published over all topics."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-friendly data."""
        return {
            "counts": dict(self.counts),
            "total": self.total,
            "sources": dict(self.sources),
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _ensure_topics(bootstrap_servers: str) -> None:
    topics.ensure_topics(bootstrap_servers, replication_factor=get_settings().kafka.replication_factor)


def _expand(what: Iterable[str]) -> list[str]:
    parts: list[str] = []
    for name in what:
        if name not in SEED_SETS:
            raise SeedError(f"seed set {name!r} is not known; choose from {sorted(SEED_SETS)}")
        parts.extend(part for part in SEED_SETS[name] if part not in parts)
    return parts


def seed_records(
    *, shared_data: Path | None = None, what: Iterable[str] = ("taubench", "knowledge"), limit: int | None = None
) -> tuple[list[RawRecord], dict[str, str]]:
    """The raw messages of the chosen seed sets, and the file each was read from."""
    shared_data = default_shared_data() if shared_data is None else shared_data
    records: list[RawRecord] = []
    sources: dict[str, str] = {}
    for part in _expand(what):
        if part in ("taubench", "requesters", "tickets"):
            path = taubench.world_path(shared_data=shared_data)
            world = taubench.load_world(path=path)
            if part == "taubench":
                records.extend(taubench.snapshot_records(world=world, log=DebeziumLog(), limit=limit))
            elif part == "requesters":
                records.extend(tickets.requester_records(world)[:limit])
            else:
                records.extend(tickets.ticket_records(world)[:limit])
        elif part == "help":
            path = knowledge.HELP_CENTRE
            records.extend(map(kb_article_record, knowledge.help_articles(path=path)[:limit]))
        elif part == "policy":
            path = knowledge.policy_path(shared_data=shared_data)
            records.extend(map(kb_article_record, knowledge.policy_articles(path=path)[:limit]))
        else:
            path = knowledge.banking_corpus_path(shared_data=shared_data)
            records.extend(map(kb_article_record, knowledge.banking_articles(path=path, limit=limit)))
        sources[part] = str(path)
        if part != "help" and not path.is_relative_to(shared_data):
            log.warning("seed set %r is not under %s; replaying the bundled copy %s", part, shared_data, path)
    return records, sources


def publish_records(
    *, bootstrap_servers: str, records: Iterable[RawRecord], total: int | None = None, progress: bool = False
) -> dict[str, int]:
    """Publish raw messages in order (unvalidated, as the vendor sent them); return counts per topic."""
    counts: Counter[str] = Counter()
    with (
        Publisher(bootstrap_servers, client_id="streamdesk-seed") as publisher,
        tqdm(total=total, unit="msg", desc="replay", disable=not progress) as bar,
    ):
        for record in records:
            publisher.publish(record.topic, record.value, key=record.key, headers=record.headers, validate=False)
            counts[record.topic] += 1
            bar.update()
    return dict(counts)


def replay(
    *,
    bootstrap_servers: str,
    shared_data: Path | None = None,
    what: Iterable[str] = ("taubench", "knowledge"),
    limit: int | None = None,
    progress: bool = True,
) -> ReplaySummary:
    """Publish the seed sets (`taubench`, `knowledge` = `help` + `policy`, `banking`); `limit` caps each collection.

    `knowledge` is the retail desk's (tenant `default`); `banking` goes to its own tenant.
    """
    started = time.perf_counter()
    records, sources = seed_records(shared_data=shared_data, what=what, limit=limit)
    _ensure_topics(bootstrap_servers)
    counts = publish_records(
        bootstrap_servers=bootstrap_servers, records=records, total=len(records), progress=progress
    )
    return ReplaySummary(counts=counts, sources=sources, elapsed_s=time.perf_counter() - started)


def publish_changes(*, bootstrap_servers: str, stream: ChangeStream, progress: bool = False) -> dict[str, int]:
    """Publish a generated change stream in order; return counts per topic."""
    _ensure_topics(bootstrap_servers)
    return publish_records(
        bootstrap_servers=bootstrap_servers, records=stream.messages, total=len(stream.messages), progress=progress
    )


def publish_articles(
    *, bootstrap_servers: str, articles: Iterable[KbArticle], progress: bool = False
) -> dict[str, int]:
    """Publish knowledge articles (e.g. `knowledge.beir_articles(...)`) to `raw.mapped`."""
    records: Iterator[RawRecord] = map(kb_article_record, articles)
    _ensure_topics(bootstrap_servers)
    return publish_records(bootstrap_servers=bootstrap_servers, records=records, progress=progress)
