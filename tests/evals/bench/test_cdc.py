"""`streamdesk bench cdc`: the change stream's shape, and one tiny run through streamdesk and LangChain PGVector."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.bench import cdc
from evals.bench.corpus import passages
from evals.cli import SHARED_DATA
from streamdesk.cli.main import app


def test_the_stream_has_the_cdc_mix_and_a_final_state() -> None:
    base, stream = cdc.change_stream(passages(Path(SHARED_DATA), words=100), base=50, events=200)
    assert Counter(c.op for c in stream) == {"metadata": 140, "delete": 20, "create": 20, "text": 20}
    assert [c.version_ms for c in base + stream] == sorted({c.version_ms for c in base + stream})
    state = {c.key: c for c in base}
    for change in stream:
        before = state.get(change.key)
        if change.op == "create":
            assert before is None
        else:
            assert before is not None
            assert (change.text == before.text) is (change.op != "text")
            assert (change.url != before.url) is (change.op == "metadata")
        if change.op == "delete":
            del state[change.key]
        else:
            state[change.key] = change
    assert cdc.final_state(base + stream) == state and len(state) == 50


@pytest.mark.slow
@pytest.mark.stack
def test_bench_cdc_replays_the_stream_through_both_pipelines_and_checks_both() -> None:
    done = CliRunner().invoke(app, ["bench", "cdc", "--events", "20", "--base", "5"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["final_state_ok"] and result["events"] == 20
    assert result["streamdesk"]["events_per_s"] > 0 and result["langchain"]["events_per_s"] > 0
    assert result["langchain"]["embedded"] == sum(result["mix"][op] for op in ("metadata", "create", "text"))
