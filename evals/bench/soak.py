"""`streamdesk bench soak`: `streamdesk up` under a steady event stream for a while; lag and memory over time.

A fresh `up` gets a base of knowledge articles, then for `minutes` a steady CDC stream of article changes
(the `bench cdc` mix) at `rate` events/s on its broker, and a ticket through the API every
`ticket_every_s` seconds. Every `sample_s` the ingest and agent groups' consumer lag (`lag.py`) and the
RSS of every process `up` supervises are recorded. Reported: the lag's maximum overall and in the last
window, and each process's mean RSS in the first and the last window (`window_min` minutes, or a third
of the run if shorter) with its growth.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from evals.bench import cdc
from evals.bench.corpus import passages
from evals.bench.load import running_up
from evals.bench.roundtrip import AUTH, UpProcess
from streamdesk import topics
from streamdesk.agent.worker import APP_ID as AGENT_GROUP
from streamdesk.ingest.status import ingest_lag
from streamdesk.kafka import Publisher
from streamdesk.lag import consumer_lag


def supervised_rss(up: UpProcess) -> dict[str, int]:
    """RSS in bytes of `up` and of every streamdesk or broker process under it, by role (`worker ingest`, ...)."""
    assert up.process is not None
    root = psutil.Process(up.process.pid)
    found = {"up": root.memory_info().rss}
    for child in root.children(recursive=True):
        try:
            argv = child.cmdline()
            rss = child.memory_info().rss
        except psutil.Error:
            continue
        if "streamdesk.cli.main" in argv:
            role = " ".join(argv[argv.index("streamdesk.cli.main") + 1 :][:2])
        elif argv and "tansu" in Path(argv[0]).name:
            role = "broker"
        else:
            continue
        found[role] = found.get(role, 0) + rss
    return found


def _produce(
    up: UpProcess, stream: list[cdc.Change], *, rate: float, ticket_every_s: float, stop: threading.Event
) -> None:
    started = time.monotonic()
    next_ticket = started
    with Publisher(up.bootstrap, client_id="bench-soak") as publisher:
        for n, change in enumerate(stream):
            if stop.is_set():
                return
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cdc.publish_changes(publisher, [change])
            if ticket_every_s and time.monotonic() >= next_ticket:
                body = {"subject": f"Soak ticket {n}", "body": f"Question about {change.title or change.key}"}
                httpx.post(f"{up.api_url}/tickets", json=body, headers=AUTH, timeout=30).raise_for_status()
                next_ticket += ticket_every_s


def _warm_up_agent(up: UpProcess) -> None:
    """One ticket answered before the clock starts: the agent loads its model on its first ticket, and memory
    growth is measured from a serving worker, not from one still loading."""
    body = {"subject": "Soak warm-up", "body": "Where is my order?"}
    httpx.post(f"{up.api_url}/tickets", json=body, headers=AUTH, timeout=30).raise_for_status()
    with up.connect() as conn:
        up.wait_for(
            lambda: (conn.execute("SELECT count(*) FROM answers").fetchone() or (0,))[0] > 0,
            what="the warm-up ticket's answer",
            timeout_s=900,
        )


def _window_mean(samples: list[dict[str, Any]], role: str) -> float | None:
    values = [s["rss"][role] for s in samples if role in s["rss"]]
    return statistics.fmean(values) if values else None


def summarize(samples: list[dict[str, Any]], *, window_s: float, rate: float) -> dict[str, Any]:
    """Lag and memory figures of `samples` (each: `t`, `ingest_lag`, `agent_lag`, `rss` by role)."""
    end = samples[-1]["t"]
    first = [s for s in samples if s["t"] <= samples[0]["t"] + window_s]
    last = [s for s in samples if s["t"] >= end - window_s]
    memory: dict[str, Any] = {}
    for role in sorted({role for s in samples for role in s["rss"]}):
        before, after = _window_mean(first, role), _window_mean(last, role)
        if before and after:
            memory[role] = {
                "first_mb": round(before / 2**20, 1),
                "last_mb": round(after / 2**20, 1),
                "growth": round(after / before - 1, 4),
            }
    ingest_last = max(s["ingest_lag"] for s in last)
    agent_first = max(s["agent_lag"] for s in first)
    agent_last = max(s["agent_lag"] for s in last)
    return {
        "samples": len(samples),
        "window_s": round(window_s),
        "ingest_lag_max": max(s["ingest_lag"] for s in samples),
        "ingest_lag_last_window_max": ingest_last,
        "agent_lag_max": max(s["agent_lag"] for s in samples),
        "agent_lag_last_window_max": agent_last,
        "lag_bounded": ingest_last <= max(rate * 60, 1) and agent_last <= max(agent_first, 2),
        "memory": memory,
        "memory_growth_max": max((m["growth"] for m in memory.values()), default=0.0),
        # the workers' own growth: the embedded broker keeps every message in memory (Tansu's memory storage), so
        # its RSS grows with the retained log by design; a Kafka cluster's brokers keep it on disk
        "worker_memory_growth_max": max(
            (m["growth"] for role, m in memory.items() if role.startswith("worker ")), default=0.0
        ),
    }


def run(
    *,
    shared_data: Path,
    minutes: float = 30,
    rate: float = 2.0,
    ticket_every_s: float = 60,
    sample_s: float = 10,
    window_min: float = 5,
    docs: int = 200,
    agent: bool = True,
    broker_port: int = 0,
    api_port: int = 0,
) -> dict[str, Any]:
    """Start `up`, stream changes at `rate` for `minutes` while sampling lag and RSS; the summary."""
    duration_s = minutes * 60
    events = max(1, int(rate * duration_s))
    samples: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="streamdesk-soak-") as tmp,
        running_up(
            shared_data=shared_data,
            docs=docs,
            agent=agent,
            workdir=Path(tmp),
            broker_port=broker_port,
            api_port=api_port,
        ) as (up, _),
    ):
        if agent:
            _warm_up_agent(up)
        pool = passages(shared_data, words=100)
        _, stream = cdc.change_stream(pool, base=docs, events=events, seed=30)
        stop = threading.Event()
        producer = threading.Thread(
            target=_produce, args=(up, stream), kwargs={"rate": rate, "ticket_every_s": ticket_every_s, "stop": stop}
        )
        started = time.monotonic()
        producer.start()
        try:
            while time.monotonic() - started < duration_s:
                samples.append(
                    {
                        "t": time.monotonic() - started,
                        "ingest_lag": sum(ingest_lag(up.bootstrap).values()),
                        "agent_lag": sum(
                            consumer_lag(up.bootstrap, group=AGENT_GROUP, topic_names=[topics.STORED_TICKET]).values()
                        )
                        if agent
                        else 0,
                        "rss": supervised_rss(up),
                    }
                )
                time.sleep(sample_s)
        finally:
            stop.set()
            producer.join()
    window_s = min(window_min * 60, duration_s / 3)
    return {
        "minutes": minutes,
        "rate": rate,
        "events": events,
        "ticket_every_s": ticket_every_s,
        "agent": agent,
        **summarize(samples, window_s=window_s, rate=rate),
    }
