"""`streamdesk bench load`: a few seconds of headless Locust against `up`, every endpoint answered without error."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from streamdesk.cli.main import app

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def test_bench_load_reports_rate_latency_and_errors_per_endpoint() -> None:
    args = ["--duration-s", "8", "--docs", "3", "--users", "1"]
    done = CliRunner().invoke(app, ["bench", "load", *args, "--search-rps", "1", "--tickets-rps", "1"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout.splitlines()[-1])
    for endpoint in ("search", "tickets", "webhooks"):
        figures = result[endpoint]
        assert figures["requests"] > 0 and figures["errors"] == 0, (endpoint, figures)
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert result["errors"] == 0
