"""`streamdesk bench soak`: the lag and memory summary, and a short soak of `up` driven through the command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evals.bench import soak
from streamdesk.cli.main import app

MB = 2**20


def sample(t: float, *, ingest: int, agent: int = 0, rss_mb: float) -> dict[str, object]:
    return {"t": t, "ingest_lag": ingest, "agent_lag": agent, "rss": {"worker ingest": int(rss_mb * MB)}}


def test_the_summary_compares_the_first_and_the_last_window() -> None:
    samples = [sample(t, ingest=3, rss_mb=100) for t in range(0, 60, 10)]
    samples += [sample(t, ingest=5, rss_mb=105) for t in range(60, 130, 10)]
    summary = soak.summarize(samples, window_s=30, rate=2)
    assert summary["memory"]["worker ingest"] == {"first_mb": 100.0, "last_mb": 105.0, "growth": 0.05}
    assert summary["ingest_lag_max"] == 5 and summary["lag_bounded"]
    growing = soak.summarize([sample(0, ingest=0, rss_mb=1), sample(60, ingest=500, rss_mb=2)], window_s=10, rate=2)
    assert growing["memory_growth_max"] == growing["worker_memory_growth_max"] == 1.0 and not growing["lag_bounded"]
    broker = [{**each, "rss": {**each["rss"], "broker": int((1 + each["t"] / 60) * MB)}} for each in samples]
    assert soak.summarize(broker, window_s=30, rate=2)["worker_memory_growth_max"] == 0.05


@pytest.mark.slow
@pytest.mark.stack
def test_bench_soak_samples_lag_and_every_supervised_process() -> None:
    args = ["--minutes", "0.5", "--docs", "3", "--rate", "1", "--sample-s", "3", "--ticket-every-s", "10"]
    done = CliRunner().invoke(app, ["bench", "soak", *args, "--no-agent"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["samples"] >= 3 and result["events"] == 30
    assert {"up", "worker ingest", "api", "broker"} <= set(result["memory"])
    assert result["lag_bounded"]
