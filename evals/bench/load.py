"""`streamdesk bench load`: a bounded headless Locust run against a running `streamdesk up`.

A fresh `up` (its own state dir) is started and given `docs` knowledge articles through its broker;
then Locust (`evals/bench/locustfile.py`, in its own process, gevent and all) holds a fixed rate on
each endpoint for `duration_s`: hybrid search (`GET /search`), ticket submission (`POST /tickets`)
and signed Zendesk webhooks (`POST /webhooks/zendesk`). Per endpoint: requests, rps, p50/p95 latency
(Locust's percentiles) and errors. Needs the `bench` extra.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from evals.bench import cdc
from evals.bench.corpus import passages
from evals.bench.roundtrip import AUTH, SECRET, UpProcess
from evals.exceptions import EvalError
from streamdesk.kafka import Publisher
from streamdesk.runtime.embedded import free_port

ENDPOINTS = ("search", "tickets", "webhooks")


@contextmanager
def running_up(
    *, shared_data: Path, docs: int, agent: bool, workdir: Path, broker_port: int = 0, api_port: int = 0
) -> Iterator[tuple[UpProcess, list[str]]]:
    """A fresh `up` holding `docs` knowledge articles; yields it and the articles' titles (as queries)."""
    up = UpProcess(workdir / "state", broker_port=broker_port or free_port(), api_port=api_port or free_port())
    up.agent = agent
    up.start()
    try:
        up.wait_for(lambda: httpx.get(f"{up.api_url}/readyz", timeout=5).status_code == 200, what="the API")
        base, _ = cdc.change_stream(passages(shared_data, words=100), base=docs, events=0)
        with Publisher(up.bootstrap, client_id="bench-load") as publisher:
            cdc.publish_changes(publisher, base)
        with up.connect() as conn:
            up.wait_for(lambda: cdc.stored_documents(conn) >= len(base), what=f"{len(base)} articles", timeout_s=1800)
        queries = [change.title or change.text[:80] for change in base]
        warm_up = httpx.get(f"{up.api_url}/search", params={"q": queries[0]}, headers=AUTH, timeout=900)
        warm_up.raise_for_status()  # the API loads its query embedder on the first search
        yield up, queries
    finally:
        up.stop()


def swarm(
    *, api_url: str, queries: list[str], rates: dict[str, float], duration_s: int, users: int, workdir: Path
) -> dict[str, dict[str, Any]]:
    """Run Locust headless for `duration_s` at `rates` (requests/s per endpoint); its figures per endpoint."""
    spec = importlib.util.find_spec("evals.bench.locustfile")
    if spec is None or spec.origin is None:
        raise EvalError("evals/bench/locustfile.py is missing from this installation")
    prefix = workdir / "locust"
    env = dict(
        os.environ,
        LOAD_USERS_PER_ENDPOINT=str(users),
        LOAD_API_KEY=AUTH["X-API-Key"],
        LOAD_ZENDESK_SECRET=SECRET,
        LOAD_QUERIES=json.dumps(queries),
        **{f"LOAD_RATE_{name.upper()}": str(rate) for name, rate in rates.items()},
    )
    total = users * len(ENDPOINTS)
    argv = [sys.executable, "-m", "locust", "-f", spec.origin, "--headless", "--host", api_url]
    argv += ["-u", str(total), "-r", str(total), "-t", f"{duration_s}s", "--csv", str(prefix), "--only-summary"]
    argv += ["--stop-timeout", "30", "--exit-code-on-error", "0"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration_s + 300, check=False)
    stats = prefix.with_name(prefix.name + "_stats.csv")
    if done.returncode != 0 or not stats.is_file():
        raise EvalError(f"locust exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return _endpoint_figures(stats, duration_s=duration_s)


def _endpoint_figures(stats: Path, *, duration_s: int) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    with stats.open() as rows:
        for row in csv.DictReader(rows):
            if row["Name"] not in ENDPOINTS:
                continue
            requests = int(row["Request Count"])
            figures[row["Name"]] = {
                "requests": requests,
                "rps": round(requests / duration_s, 2),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "errors": int(row["Failure Count"]),
            }
    return figures


def run(
    *,
    shared_data: Path,
    rates: dict[str, float],
    duration_s: int = 120,
    users: int = 4,
    docs: int = 300,
    agent: bool = False,
    broker_port: int = 0,
    api_port: int = 0,
) -> dict[str, Any]:
    """Start `up`, load it with `docs` articles, hold `rates` for `duration_s`; figures per endpoint."""
    with (
        tempfile.TemporaryDirectory(prefix="streamdesk-load-") as tmp,
        running_up(
            shared_data=shared_data,
            docs=docs,
            agent=agent,
            workdir=Path(tmp),
            broker_port=broker_port,
            api_port=api_port,
        ) as (up, queries),
    ):
        figures = swarm(
            api_url=up.api_url, queries=queries, rates=rates, duration_s=duration_s, users=users, workdir=Path(tmp)
        )
    missing = [name for name in ENDPOINTS if name not in figures]
    if missing:
        raise EvalError(f"locust reported nothing for {', '.join(missing)}")
    return {
        "duration_s": duration_s,
        "target_rps": rates,
        "users_per_endpoint": users,
        "documents": docs,
        "agent": agent,
        **figures,
        "errors": sum(f["errors"] for f in figures.values()),
    }
