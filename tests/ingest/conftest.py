"""A running ingest worker (real Faust process) on a real broker and database, per test module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer

from streamdesk import db, topics
from streamdesk.config import reset_settings
from streamdesk.kafka import Publisher
from streamdesk.runtime.embedded import EmbeddedBroker, free_port
from streamdesk.runtime.supervisor import stop_process

T = TypeVar("T")
MAX_BODY_BYTES = 100_000


@dataclass
class IngestStack:
    """Broker, database and one supervised ingest worker process."""

    bootstrap_servers: str
    database_url: str
    log_path: Path
    worker: subprocess.Popen[bytes] | None = None
    max_body_bytes: int = MAX_BODY_BYTES

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap_servers,
            DATABASE_URL=self.database_url,
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            STREAMDESK_INGEST__MAX_BODY_BYTES=str(self.max_body_bytes),
        )
        return env

    def start_worker(self) -> None:
        with self.log_path.open("ab") as out:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "streamdesk.cli.main", "worker", "ingest"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait(10)

    def stop_worker(self) -> None:
        stop_process(self.worker, timeout_s=20)

    def publisher(self) -> Publisher:
        return Publisher(self.bootstrap_servers, client_id="tests")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with db.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    def dead_letters_on_topic(self, *, group: str, wanted: int, polls: int = 120) -> dict[str, dict[str, Any]]:
        """The `deadletter` topic's records by key, read until `wanted` have arrived (or `polls` half-seconds)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
            }
        )
        consumer.subscribe([topics.DEAD_LETTER])
        seen: dict[str, dict[str, Any]] = {}
        try:
            for _ in range(polls):
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error():
                    seen[(msg.key() or b"").decode()] = json.loads(msg.value() or b"null")
                if len(seen) >= wanted:
                    break
        finally:
            consumer.close()
        return seen

    def wait_for(self, probe: Callable[[], T], *, timeout_s: float = 90.0, what: str = "condition") -> T:
        """Poll `probe` until it returns something truthy; fail with the worker log tail if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = probe()
            if result:
                return result
            if self.worker is not None and self.worker.poll() is not None:
                break
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        pytest.fail(f"timed out waiting for {what}; worker log tail:\n{tail}")


@contextmanager
def running_ingest_stack(
    database_url: str, truncate: Callable[[str], None], tmp: Path, *, max_body_bytes: int = MAX_BODY_BYTES
) -> Iterator[IngestStack]:
    """A fresh broker with all topics, an emptied database, and a running ingest worker taking `max_body_bytes`."""
    broker = EmbeddedBroker(free_port(), tmp / "tansu.log").start()
    topics.ensure_topics(broker.bootstrap_servers)
    truncate(database_url)
    previous = {k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    os.environ["DATABASE_URL"] = database_url
    reset_settings()
    stack = IngestStack(broker.bootstrap_servers, database_url, tmp / "worker.log", max_body_bytes=max_body_bytes)
    stack.start_worker()
    try:
        yield stack
    finally:
        stack.stop_worker()
        broker.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()


@pytest.fixture(scope="module")
def ingest_stack(
    database_url: str, truncate: Callable[[str], None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IngestStack]:
    """A fresh broker with all topics, an emptied database, and a running ingest worker (100 kB bodies)."""
    with running_ingest_stack(database_url, truncate, tmp_path_factory.mktemp("ingest")) as stack:
        yield stack


@pytest.fixture(scope="session")
def kcat(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """kcat (Debian's, a real third-party client) and the environment to run it with.

    Debian bookworm's kcat links librdkafka 2.0.2, which cannot parse Tansu's ApiVersions reply ("Read
    underflow"); librdkafka 2.16 can. kcat is run against the librdkafka that confluent-kafka ships.
    """
    import glob
    import shutil

    import confluent_kafka

    binary = shutil.which("kcat")
    if binary is None:
        pytest.fail("kcat is not installed: run `make system-deps` (Debian package kcat)")
    libs = glob.glob(str(Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs" / "librdkafka-*.so.1"))
    env = dict(os.environ)
    if libs:
        folder = tmp_path_factory.mktemp("librdkafka")
        (folder / "librdkafka.so.1").symlink_to(libs[0])
        env["LD_LIBRARY_PATH"] = str(folder)
    return binary, env
