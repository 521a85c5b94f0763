"""The supervisor with real child processes: replicas per group, a SIGKILLed child restarted, `up --workers`."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdesk.cli.main import app
from streamdesk.exceptions import ConfigurationError
from streamdesk.runtime.service import SCALED_GROUPS, check_replicas, group_inputs
from streamdesk.runtime.supervisor import Supervisor, child_env

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_replicas_are_named_after_their_group_and_added_while_running(tmp_path: Path) -> None:
    supervisor = Supervisor(max_backoff_s=0.5)
    assert supervisor.add_replicas("ingest", SLEEPER, env=child_env(), replicas=2, log_dir=tmp_path) == [
        "ingest",
        "ingest-2",
    ]
    supervisor.add("relay", SLEEPER, env=child_env())
    try:
        supervisor.start()
        [added] = supervisor.add_replicas("ingest", SLEEPER, env=child_env(), replicas=1, log_dir=tmp_path)
        supervisor.start([added])
        assert added == "ingest-3" and supervisor.groups() == {"ingest": 3, "relay": 1}
        assert supervisor.replicas("ingest") == ["ingest", "ingest-2", "ingest-3"]
        assert (tmp_path / "ingest-3.log").exists()
        with pytest.raises(ConfigurationError, match="already supervised"):
            supervisor.add("relay", SLEEPER, env=child_env())
    finally:
        supervisor.stop(5.0)


def test_a_sigkilled_replica_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    supervisor = Supervisor(max_backoff_s=0.5)
    supervisor.add_replicas("agent", SLEEPER, env=child_env(), replicas=2, log_dir=tmp_path)
    try:
        supervisor.start()
        first = supervisor.child("agent-2").process
        other = supervisor.child("agent").process
        assert first is not None and other is not None
        supervisor.kill("agent-2")
        assert first.returncode == -9
        restarted: list[str] = []
        deadline = time.monotonic() + 10
        while not restarted and time.monotonic() < deadline:
            restarted = supervisor.poll()
            time.sleep(0.1)
        assert restarted == ["agent-2"] and supervisor.child("agent-2").process is not first
        assert other.poll() is None and supervisor.child("agent-2").restarts == 1
    finally:
        supervisor.stop(5.0)


def test_no_group_gets_more_workers_than_its_input_partitions() -> None:
    fewest = min(topics_partitions for topics_partitions in _partitions().values())
    assert fewest >= 8, "the scaled groups' topics keep room for 8 workers each"
    check_replicas(fewest)
    with pytest.raises(ConfigurationError, match="partitions"):
        check_replicas(fewest + 1)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(app, ["up", "--workers", str(fewest + 1)])
    finally:  # the CLI points the root logger at the runner's stderr, which closes after the invoke
        root.handlers[:] = handlers
        root.setLevel(level)
    assert result.exit_code == 2 and "--workers" in result.output


def _partitions() -> dict[str, int]:
    from streamdesk import topics

    return {f"{group}:{name}": topics.spec(name).partitions for group in SCALED_GROUPS for name in group_inputs(group)}
