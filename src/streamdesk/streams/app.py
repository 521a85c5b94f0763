"""The Faust app factory every stream worker (ingest, agent, learn) is built with."""

from __future__ import annotations

from typing import Any

import faust

from streamdesk import telemetry, topics
from streamdesk.config import Settings, faust_dir

FAUST_OPTIONS: dict[str, Any] = {
    "store": "memory://",
    "autodiscover": False,
    "web_enabled": False,
    "topic_allow_declare": False,
    "topic_disable_leader": True,
    "consumer_auto_offset_reset": "earliest",
    "broker_commit_interval": 1.0,
    "broker_session_timeout": 10.0,
    "broker_heartbeat_interval": 1.0,
    "logging_config": None,
}
"""What every streamdesk Faust app shares: no web server or local tables, topics declared by `streamdesk up`,
offsets committed every second, a dead worker's partitions handed on within 10 s, our own logging."""


def bootstrap_servers(settings: Settings) -> str:
    """The broker's `host:port` list; the process exits with how to configure one when there is none."""
    if not settings.kafka.bootstrap_servers:
        raise SystemExit("no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
    return settings.kafka.bootstrap_servers


def faust_app(app_id: str, *, settings: Settings, **options: Any) -> faust.App:
    """A Faust app (and consumer group) `app_id` on the settings' broker; `options` override `FAUST_OPTIONS`."""
    return faust.App(
        app_id,
        broker=[f"kafka://{hp}" for hp in bootstrap_servers(settings).split(",")],
        datadir=str(faust_dir(settings) / "{conf.name}"),
        **(FAUST_OPTIONS | {"producer_max_request_size": topics.max_producer_bytes(settings)} | options),
    )


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """Topics `names` of `app` with keys and values as plain bytes (parsed by the caller)."""
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def run_app(app: faust.App, *, loglevel: str) -> None:
    """Run a Faust worker for `app` in the foreground until stopped, then flush telemetry."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    finally:
        telemetry.shutdown()
